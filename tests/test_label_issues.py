"""Label issues: the per-sample label-issue score, and the dashboard's correction buttons and review queue."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import streamlit as st
import torch
from streamlit.testing.v1 import AppTest
from test_app_pages import MAIN, assert_clean, env, open_page  # noqa: F401 - fixtures
from test_browser import (  # noqa: F401 - fixtures
    CHROMIUM,
    CHROMIUM_ARGS,
    IDLE,
    OVERFLOWING_DIFFS,
    README_SHOTS,
    REAL_PLATES,
    SHOTS,
    _pick,
    _screenshot,
    _settle,
    server,
    sync_api,
)
from test_browser import MAIN as BROWSER_MAIN
from torch import nn

from ocr_core import workspace
from ocr_core.checkpoint import load_model
from ocr_core.corrections import corrections_path, load_corrections, review_queue
from ocr_core.data.dataset import load_dataset
from ocr_core.formats import compile_format
from ocr_core.frame import COLUMNS, SCHEMA_VERSION, build_frame, check_frame, upgrade_frame
from ocr_core.heads import CTCHead, FixedHead
from ocr_core.preprocess import InputSpec
from ocr_core.score import label_issue, read_cached_frame, run_batch, score_dataset

from conftest import SHIPPED_DEMO

CHARS = "AB12"


class Fixed(nn.Module):
    """A stand-in model: returns the same logits whatever the images."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.logits[: batch.shape[0]]


def ctc_logits(paths: list[list[int]], sure: float = 8.0, classes: int = 1 + len(CHARS)) -> torch.Tensor:
    """Logits whose best path is ``paths[i]`` (ids per time step), each step ``sure`` above the rest."""
    out = torch.zeros(len(paths), len(paths[0]), classes)
    for i, path in enumerate(paths):
        for t, c in enumerate(path):
            out[i, t, c] = sure
    return out


def batch(head, logits, labels, text_format=None):
    images = np.zeros((len(labels), 32, 128, 3), np.uint8)
    return run_batch(Fixed(logits), head, InputSpec(), images, torch.device("cpu"), labels, text_format)


def test_ctc_a_wrong_label_scores_high_and_a_right_one_zero():
    head = CTCHead(CHARS)  # blank 0, A 1, B 2, 1 3, 2 4
    path = [1, 1, 0, 2, 3, 0]  # "AB1"
    out = batch(head, ctc_logits([path, path, path]), ["AB1", "AB2", "A"])
    assert out.preds == ["AB1", "AB1", "AB1"]
    assert out.label_issue[0] == 0.0, "the label is the reading"
    assert out.label_issue[1] > 5, "a label the model finds far less likely than its reading"
    assert out.label_issue[2] > 5
    # It is the loss of the label minus that of the reading, both under the same outputs.
    log_probs = head.log_probs(ctc_logits([path]))
    expected = head.sample_losses(log_probs, ["AB2"]) - head.sample_losses(log_probs, ["AB1"])
    assert out.label_issue[1] == pytest.approx(float(expected[0]), rel=1e-5)
    assert out.loss[1] == pytest.approx(float(head.sample_losses(log_probs, ["AB2"])[0]), rel=1e-5)


def test_fixed_a_wrong_label_scores_high_and_a_right_one_zero():
    head = FixedHead(CHARS, positions=3)
    logits = torch.zeros(3, 3, 4)
    for p, c in enumerate([0, 1, 2]):  # "AB1"
        logits[:, p, c] = 6.0
    out = batch(head, logits, ["AB1", "BB1", "AB"])
    assert out.preds[0] == "AB1"
    assert out.label_issue[0] == 0.0
    assert out.label_issue[1] == pytest.approx(6.0, abs=0.05), "one position 6 nats less likely"
    assert np.isnan(out.label_issue[2]), "a label of the wrong length cannot be scored by a fixed head"


def test_a_label_more_likely_than_the_greedy_reading_scores_below_zero():
    # Two steps: the best path is "A" then blank (0.4 x 0.6 = 0.24), but "B" wins over all its alignments.
    head = CTCHead(CHARS)
    probs = torch.tensor([[[0.0, 0.4, 0.35, 0.25, 0.0], [0.6, 0.0, 0.4, 0.0, 0.0]]]) + 1e-6
    out = batch(head, probs.log(), ["B"])
    assert out.preds == ["A"]
    assert out.label_issue[0] < 0


def test_labels_outside_the_vocabulary_have_no_score():
    head = CTCHead(CHARS)
    path = [1, 1, 0, 2, 3, 0]
    out = batch(head, ctc_logits([path]), ["皖AB1"])
    assert np.isnan(out.label_issue[0]) and not np.isnan(out.loss[0])


@pytest.mark.parametrize("kind", ["ctc", "fixed"])
def test_constrained_readings_are_scored_as_returned(kind):
    if kind == "ctc":
        head = CTCHead(CHARS)
        # Greedy "A1"; the pattern wants two letters then a digit: the beam returns another reading.
        logits = torch.log(torch.tensor([[[0.05, 0.9, 0.02, 0.02, 0.01], [0.05, 0.02, 0.5, 0.4, 0.03],
                                          [0.5, 0.02, 0.02, 0.45, 0.01]]]))
    else:
        head = FixedHead(CHARS, positions=3)
        logits = torch.log(torch.tensor([[[0.9, 0.05, 0.03, 0.02], [0.1, 0.2, 0.6, 0.1],
                                          [0.1, 0.1, 0.7, 0.1]]]))
    pattern = r"[AB]{2}[12]"
    free = batch(head, logits, ["AB1"])
    bound = batch(head, logits, ["AB1"], text_format=pattern)
    assert free.preds != bound.preds and compile_format(pattern).fullmatch(bound.preds[0])
    log_probs = head.log_probs(logits)
    expected = head.sample_losses(log_probs, ["AB1"]) - head.sample_losses(log_probs, bound.preds)
    assert bound.label_issue[0] == pytest.approx(float(expected[0]), abs=1e-4)
    assert np.array_equal(label_issue(head, log_probs, ["AB1"], bound.preds), bound.label_issue)


def test_score_dataset_fills_the_column(tmp_path, make_images, tiny_checkpoint):
    loaded = load_model(tiny_checkpoint)
    labels = ["AB1234", "皖A1234", "沪B5678", "Z9"]
    make_images(tmp_path / "d", labels, naming="id")
    frame = score_dataset(loaded, load_dataset(tmp_path / "d", loaded.input_size), torch.device("cpu"))
    assert str(frame["label_issue"].dtype) == COLUMNS["label_issue"].dtype
    known = frame["label_issue"].notna()
    assert known.all(), "every label of TINY_VOCAB is scored"
    # A reading equal to its label scores exactly 0; a different one never ties exactly.
    assert (frame.loc[frame["correct"], "label_issue"] == 0).all()
    assert (frame.loc[~frame["correct"], "label_issue"] != 0).all()


def test_frames_of_version_2_still_load(tmp_path):
    assert SCHEMA_VERSION == 3
    frame = build_frame(pd.DataFrame({"path": ["/a.png", "/b.png"], "label": ["A1", "B2"], "pred": ["A1", "B1"],
                                      "loss": [0.1, 3.0], "camera": ["x", "y"]}))
    assert frame["label_issue"].isna().all(), "no model figures: unknown"
    old = frame.drop(columns="label_issue")
    assert check_frame(old) == ["missing column 'label_issue'"]
    old.to_parquet(tmp_path / "v2.parquet", index=False)
    back = read_cached_frame(tmp_path / "v2.parquet")
    assert check_frame(back) == [] and back["label_issue"].isna().all()
    assert list(back.columns) == list(frame.columns), "the new column takes its place after loss"
    assert upgrade_frame(frame) is frame


# ---- the dashboard: correction buttons and the review queue ----------------------------------------------



def embedded(env) -> tuple[pd.DataFrame, Path]:  # noqa: F811 - the fixture's value
    """The stand-in's score frame of the embedded set, and that dataset's corrections file (emptied)."""
    for sidecar in (env.workspace / "scores").glob("*.json"):
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
        if meta["checkpoint"] == str(env.checkpoint) and workspace.EMBEDDED_TESTSET in meta["dataset"]:
            path = corrections_path(meta["dataset"])
            assert path.parent.parent == env.workspace, "kept in the workspace"
            path.unlink(missing_ok=True)
            return pd.read_parquet(sidecar.with_suffix(".parquet")), path
    raise AssertionError("no cached score frame of the embedded test set")


def restart() -> AppTest:
    st.cache_data.clear()
    st.cache_resource.clear()
    return AppTest.from_file(MAIN, default_timeout=120)


def markdown(at: AppTest) -> str:
    return " ".join(m.value for m in at.markdown)


def test_card_buttons_write_decisions_that_survive_a_restart(app, env):  # noqa: F811 - fixtures
    at = open_page(app, "worst")
    frame, path = embedded(env)
    inspect = [b for b in at.button if b.key and b.key.startswith("worst:inspect:")]
    first, second, third = (int(b.key.rsplit(":", 1)[1]) for b in inspect[:3])
    row = frame.set_index("sample").loc[first]
    box = at.text_input(key=f"worst:fix:{first}:text")
    assert box.value == row["pred"], "prefilled with the reading"
    box.set_value(" ").run()
    at.button(key=f"worst:fix:{first}:relabel").click().run()
    assert any("needs its text" in e.value for e in at.error), "an empty label is refused in a sentence"
    assert not path.exists()
    at.text_input(key=f"worst:fix:{first}:text").set_value("皖A12345").run()
    at.button(key=f"worst:fix:{first}:relabel").click().run()
    assert_clean(at)
    at.button(key=f"worst:fix:{second}:invalid").click().run()
    at.button(key=f"worst:fix:{third}:unsure").click().run()
    assert_clean(at)
    assert any("Saved for" in s.value for s in at.success)
    decisions = load_corrections(path)
    paths = frame.set_index("sample")["path"]
    assert [(decisions[str(Path(paths[s]).resolve())].action, decisions[str(Path(paths[s]).resolve())].text)
            for s in (first, second, third)] == [("relabel", "皖A12345"), ("invalid", ""), ("unsure", "")]
    shown = markdown(at)
    assert "Decision: label is wrong: <b>皖A12345</b>" in shown and "Decision: not a valid sample" in shown

    again = open_page(restart(), "worst")
    shown = markdown(again)
    assert "Decision: label is wrong" in shown and "Decision: unsure" in shown, "read back after a restart"
    assert again.text_input(key=f"worst:fix:{first}:text").value == "皖A12345"


def test_confusion_cards_take_corrections_too(app, env):  # noqa: F811 - fixtures
    """A misread sample met on Confusions is corrected where it is seen, into the same file (Slices and the
    Error map pass the same file to their cards; tests/test_slices.py clicks one on Slices)."""
    at = open_page(app, "confusions")
    frame, path = embedded(env)
    invalid = [b for b in at.button if b.key and b.key.startswith("confusion:fix:") and b.key.endswith(":invalid")]
    assert invalid, "every card has the correction buttons"
    sample = int(invalid[0].key.split(":")[2])
    invalid[0].click().run()
    assert_clean(at)
    assert any("Saved for" in s.value for s in at.success)
    decision = load_corrections(path)[str(Path(frame.set_index("sample").at[sample, "path"]).resolve())]
    assert decision.action == "invalid"
    assert "Decision: not a valid sample" in markdown(at)


def test_detail_dialog_buttons_and_the_label_issue_order(app, env):  # noqa: F811 - fixtures
    at = open_page(app, "worst")
    frame, path = embedded(env)
    at.selectbox(key="worst_order").set_value("label_issue").run()
    assert_clean(at)
    inspect = [b for b in at.button if b.key and b.key.startswith("worst:inspect:")]
    shown = [int(b.key.rsplit(":", 1)[1]) for b in inspect]
    wrong = frame[~frame["correct"]]
    assert shown == wrong.sort_values(["label_issue", "confidence"], ascending=False)["sample"].tolist()[:len(shown)]
    at.toggle(key="worst_issue").set_value(True).run()
    at.number_input(key="worst_issue_min").set_value(1e6).run()
    assert any("No errors in this slice" in i.value for i in at.info), "no label-issue score is that high"
    at.toggle(key="worst_issue").set_value(False).run()

    target = shown[1]
    at.button(key=f"worst:inspect:{target}").click().run()
    assert at.selectbox(key="worst_detail").value == target
    assert "No decision about this sample yet" in markdown(at)
    at.button(key=f"worst_detail_fix:{target}:invalid").click().run()
    assert_clean(at)
    decision = load_corrections(path)[str(Path(frame.set_index("sample").at[target, "path"]).resolve())]
    assert decision.action == "invalid"


def test_review_queue_walks_the_candidates_and_remembers_them(app, env):  # noqa: F811 - fixtures
    at = open_page(app, "review")
    frame, path = embedded(env)
    at = open_page(restart(), "review")  # the corrections file was emptied after the first draw
    queue = review_queue(frame)["sample"].tolist()
    n = len(queue)
    assert n == int((~frame["correct"]).sum()) and n > 3

    def current() -> int:
        return int(next(t.key for t in at.text_input if t.key.startswith("review:text:")).rsplit(":", 1)[1])

    def progress() -> str:
        return at.get("progress")[0].proto.text

    assert current() == queue[0] and progress().startswith(f"0 of {n} reviewed")
    assert at.button(key="review:keep").proto.shortcut.lower() == "a"
    at.button(key="review:keep").click().run()
    assert current() == queue[1] and progress().startswith(f"1 of {n} reviewed")
    at.button(key="review:skip").click().run()
    assert current() == queue[2] and "1 skipped" in progress()
    at.text_input(key=f"review:text:{queue[2]}").set_value("沪B12345").run()
    at.button(key="review:relabel").click().run()
    assert_clean(at)
    assert current() == queue[3] and progress().startswith(f"2 of {n} reviewed")
    decisions = load_corrections(path)
    paths = frame.set_index("sample")["path"]
    assert [decisions[str(Path(paths[s]).resolve())].action for s in (queue[0], queue[2])] == ["keep", "relabel"]
    assert str(Path(paths[queue[1]]).resolve()) not in decisions, "a skip writes nothing"

    again = open_page(restart(), "review")
    at = again
    assert progress().startswith(f"2 of {n} reviewed") and current() == queue[1], "skips last one session"


# ---- in a real browser: the keys, and the screenshots the README shows ------------------------------------

@pytest.mark.browser
@pytest.mark.slow
def test_review_queue_in_chromium(sync_api, server):  # noqa: F811 - fixtures
    """On the real crops: the queue shows its first candidate, "A" accepts it, a letter typed into the text box
    decides nothing, and a card's Correct popover holds the buttons. With PLATELENS_UPDATE_SCREENSHOTS=1 the
    shots go to tests/screenshots/ (10-review-queue.png, 10-card-buttons.png)."""
    if not REAL_PLATES.is_dir():
        pytest.skip(f"{REAL_PLATES} is absent (see ../shared/data/README.md); test needs the real crops")
    shots = SHOTS / "label-issues"
    shots.mkdir(parents=True, exist_ok=True)
    progress = f'{BROWSER_MAIN} [data-testid="stProgress"]'
    # The queue holds the demo's misreadings of the real crops, however many the shipped demo makes. The
    # module's `env` fixture points workspace.DEMO_CHECKPOINT at a stand-in; the server reads the shipped file.
    demo = load_model(SHIPPED_DEMO)
    scores = score_dataset(demo, load_dataset(REAL_PLATES, demo.input_size, upscale=demo.input.upscale))
    n = int((~scores["correct"]).sum())
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(server)
            _pick(page, "Dataset", "Other folder or manifest…")
            box = page.get_by_role("textbox", name="Dataset path")
            box.fill(str(REAL_PLATES))
            box.press("Enter")
            page.locator(BROWSER_MAIN).get_by_text("real-plates").first.wait_for(timeout=150_000)
            page.locator('[data-testid="stSidebarNav"]').get_by_text("Review labels", exact=True).click()
            _settle(page, "Label review queue", f"{progress}, {BROWSER_MAIN} [data-testid='stImage'] img",
                    timeout_ms=150_000)
            assert page.locator('[data-testid="stException"]').count() == 0
            text = page.locator(progress).inner_text()
            assert f"0 of {n} reviewed" in text, text
            _screenshot(page, shots / "10-review-queue.png")

            typed = page.get_by_role("textbox", name="Corrected label (for “Label is wrong”)")
            typed.click()
            typed.press("End")
            typed.type("W")  # a plate letter, also the "Label is wrong" key: typing must not decide
            page.wait_for_timeout(1500)
            page.wait_for_function(IDLE, timeout=30_000)
            assert f"0 of {n} reviewed" in page.locator(progress).inner_text()
            page.locator(BROWSER_MAIN).get_by_text(f"Candidate 1 of {n}").wait_for(timeout=10_000)
            page.locator(BROWSER_MAIN).get_by_text(f"Candidate 1 of {n}").click()  # focus leaves the box
            page.keyboard.press("a")
            page.locator(BROWSER_MAIN).get_by_text(f"1 of {n} reviewed").wait_for(timeout=30_000)
            page.wait_for_function(IDLE, timeout=30_000)
            assert page.locator(BROWSER_MAIN).get_by_text(f"Candidate 2 of {n}").count() == 1

            page.locator('[data-testid="stSidebarNav"]').get_by_text("Worst predictions", exact=True).click()
            _settle(page, "Worst predictions", f'{BROWSER_MAIN} [data-testid="stImage"] img', timeout_ms=60_000)
            page.locator(BROWSER_MAIN).get_by_text("Decision: label is right").first.wait_for(timeout=10_000)
            assert page.evaluate(OVERFLOWING_DIFFS) == [], "diffs cut off inside their cards"
            _screenshot(page, shots / "worst-with-buttons.png")
            decided = page.locator(BROWSER_MAIN).get_by_text("Decision: label is right").first
            card = decided.locator("xpath=ancestor::div[.//img][1]")
            card.evaluate("e => e.scrollIntoView({block: 'start'})")
            card.get_by_role("button", name="Correct").click()
            body = page.locator('[data-testid="stPopoverBody"]')
            body.get_by_role("button", name="Not a valid sample").wait_for(timeout=10_000)
            page.mouse.move(5, 5)  # no tooltip over the shot
            page.wait_for_timeout(500)
            boxes = [card.bounding_box(), body.bounding_box()]
            left, top = min(b["x"] for b in boxes) - 12, min(b["y"] for b in boxes) - 12
            right = max(b["x"] + b["width"] for b in boxes) + 12
            bottom = max(b["y"] + b["height"] for b in boxes) + 12
            page.screenshot(path=str(shots / "10-card-buttons.png"),
                            clip={"x": left, "y": top, "width": right - left, "height": bottom - top})
        finally:
            browser.close()
    if os.environ.get("PLATELENS_UPDATE_SCREENSHOTS") == "1":
        for name in ("10-review-queue", "10-card-buttons"):
            shutil.copyfile(shots / f"{name}.png", README_SHOTS / f"{name}.png")


def test_imported_predictions_have_no_label_issue_score(tmp_path, make_images):
    from ocr_core.predictions import import_predictions

    images = make_images(tmp_path / "d", ["AB12", "BA21"])
    csv = tmp_path / "p.csv"
    csv.write_text("file,label,pred\n" + "".join(f"d/{p.name},{p.stem},AB12\n" for p in images), encoding="utf-8")
    frame = import_predictions(csv).frame
    assert check_frame(frame) == [] and frame["label_issue"].isna().all()
    # A version-2 frame given as a predictions file loads too, its label-issue scores unknown.
    old = frame.drop(columns="label_issue").assign(path=[str(p) for p in images])
    old.to_parquet(tmp_path / "old.parquet", index=False)
    again = import_predictions(tmp_path / "old.parquet").frame
    assert check_frame(again) == [] and again["label_issue"].isna().all()


def test_review_queue_order_and_clean_labels():
    from ocr_core.corrections import MAX_LABEL_CHARS, clean_label
    from ocr_core.errors import InputError

    frame = build_frame(pd.DataFrame({
        "path": [f"/x/{i}.png" for i in range(6)], "label": ["A", "B", "C", "D", "E", "F"],
        "pred": ["A", "b", "c", "d", "e", "f"], "confidence": [0.9, 0.2, 0.99, 0.5, 0.95, 0.1],
        "label_issue": [0.0, 5.0, 1.0, 9.0, np.nan, np.nan]}))
    assert review_queue(frame)["sample"].tolist() == [3, 1, 2, 4, 5], "score first, unknown last by confidence"
    assert clean_label("  皖A1 ") == "皖A1"
    assert clean_label("e\u0301") == "\u00e9", "one glyph typed two ways is one label"
    for bad in ("", "  ", "A\nB", "x" * (MAX_LABEL_CHARS + 1)):
        with pytest.raises(InputError):
            clean_label(bad)
