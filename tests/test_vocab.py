"""Vocabulary: ids, CTC collapse, deterministic construction, extension and unknown characters."""

from __future__ import annotations

import numpy as np
import pytest

from ocr_core.checkpoint import load_model
from ocr_core.data.dataset import load_dataset
from ocr_core.score import score_dataset
from ocr_core.vocab import BLANK_ID, Vocab


def test_ids_start_at_one_and_blank_is_zero():
    vocab = Vocab("AB皖")
    assert BLANK_ID == 0
    assert vocab.num_classes == 4
    assert len(vocab) == 3
    assert vocab.encode("皖AB") == [3, 1, 2]
    assert "皖" in vocab and "C" not in vocab and "AB" not in vocab


def test_encode_decode_round_trip_non_ascii():
    vocab = Vocab("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ皖沪豫")
    for text in ["皖AY339S", "豫A00001", "沪ZZ9Z9Z"]:
        ids = vocab.encode(text)
        assert len(ids) == len(text)
        assert all(1 <= i <= len(vocab) for i in ids)
        assert vocab.decode(ids) == text


def test_decode_skips_blank_and_out_of_range_without_collapsing():
    vocab = Vocab("AB")
    assert vocab.decode([1, 1, 0, 2, 3, -1, 99, 2]) == "AABB"


def test_ctc_collapse_merges_repeats_then_drops_blanks():
    vocab = Vocab("ABC")
    # A A | blank | A | B B | blank blank | C  -> the blank between the A's keeps both.
    assert vocab.ctc_collapse([1, 1, 0, 1, 2, 2, 0, 0, 3]) == "AABC"
    assert vocab.ctc_collapse([0, 0, 0]) == ""
    assert vocab.ctc_collapse([2, 2, 2, 2]) == "B"
    assert vocab.ctc_collapse([3, 0, 3, 3, 0, 0, 3]) == "CCC"


def test_duplicate_characters_are_rejected():
    with pytest.raises(ValueError, match="duplicate"):
        Vocab("ABCA")


def test_from_labels_is_sorted_and_independent_of_order():
    labels = ["皖AY339S", "沪B12345", "ZZ9"]
    a = Vocab.from_labels(labels)
    b = Vocab.from_labels(list(reversed(labels)))
    c = Vocab.from_labels(["ZZ9", "沪B12345", "皖AY339S", "皖AY339S"])
    assert a == b == c
    assert list(a.chars) == sorted(set("".join(labels)))
    assert len(set(a.chars)) == len(a.chars)


def test_extended_keeps_old_ids_and_appends_new_sorted():
    old = Vocab("ZYX")
    new = old.extended(["XQB", "A皖"])
    assert new.chars.startswith("ZYX")
    assert new.chars[3:] == "".join(sorted("QBA皖"))
    for c in "ZYX":
        assert new.encode(c) == old.encode(c)
    assert old.extended(["XYZ"]) == old  # nothing new -> same vocabulary


def test_unknown_chars_in_order_of_first_appearance():
    vocab = Vocab("ABC123")
    assert vocab.unknown_chars("A豫B豫Q1") == "豫Q"
    assert vocab.unknown_chars("CAB") == ""
    assert vocab.encode("A豫B") == [1, 2]


def test_scoring_a_label_with_unknown_character_sets_oov(tmp_path, make_images, tiny_checkpoint):
    loaded = load_model(tiny_checkpoint)
    assert "豫" not in loaded.vocab and "皖" in loaded.vocab
    folder = tmp_path / "data"
    make_images(folder, ["豫A12345", "皖A12345"], naming="id")
    dataset = load_dataset(folder)
    frame = score_dataset(loaded, dataset)
    by_label = frame.set_index("label")
    assert bool(by_label.loc["豫A12345", "oov"]) is True
    assert bool(by_label.loc["皖A12345", "oov"]) is False
    # The known part of the OOV label is still scored: a finite CTC loss.
    assert np.isfinite(by_label.loc["豫A12345", "loss"])
    assert not bool(by_label.loc["豫A12345", "correct"])
