"""Recognizer heads: how a model's logits become text, confidences, probabilities and a loss.

A model maps preprocessed images to logits ``(N, T, C)``; its head says what ``T`` and ``C`` mean.

- ``ctc``: ``T`` time steps over ``C`` classes, one of them the blank; a reading merges repeated ids
  and drops blanks. The token layout is configurable (``blank`` id, ``first`` id of the first
  character; ids between are reserved tokens such as seed 001's OOV and PAD), so notebook checkpoints
  load with their own layout.
- ``fixed``: ``T`` positions, each a class distribution over its own character set (cross-entropy per
  position), optionally with a separate set for position 0 (the province head of seed 003). Columns past
  a position's set are padding and are masked out.

Definitions shared by every head, so that every score-frame column means the same for all models:
``confidence`` is the probability of the reading the head returns under the model (CTC: the best
path; fixed: the product of every position's top probability). ``loss`` is the negative
log-likelihood of the label under the model (CTC: over all alignments; fixed: the sum of the
positions' cross-entropies), NaN where the head cannot represent the label at all.
The training loop, the scorer and the pages call the head; none of them names its family.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np
import regex
import torch
import torch.nn.functional as F

from ocr_core.formats import follows, is_viable_prefix
from ocr_core.vocab import Vocab

BLANK_GLYPH = "∅"
RESERVED_GLYPH = "·"
# Padding logits of a fixed head's short positions; finite so that fp16 autocast keeps it (max 65504).
_MASKED = -1e4


def repeat_count(text: str) -> int:
    """Number of adjacent equal characters (``"aab"``: 1, ``"aaa"``: 2)."""
    return sum(1 for a, b in zip(text, text[1:]) if a == b)


class Head(Protocol):
    """What every head offers to the training loop, the scorer and the pages."""

    kind: ClassVar[str]
    matrix_title: ClassVar[str]
    row_name: ClassVar[str]
    # Whether a label can be too long for the model's outputs (a repeat costs an extra step).
    counts_time_steps: ClassVar[bool]

    @property
    def vocab(self) -> Vocab:
        """Every character the head can read, in a stable order."""

    @property
    def output_classes(self) -> int | tuple[int, ...]:
        """What a model factory needs to size its output layer(s)."""

    def log_probs(self, logits: torch.Tensor) -> torch.Tensor:
        """Float32 log-probabilities (N, T, C) of raw logits (masked where the head says so)."""

    def decode(self, log_probs: torch.Tensor) -> tuple[list[str], np.ndarray]:
        """Readings and their confidences (float64) for a batch of log-probabilities."""

    def decode_constrained(self, log_probs: torch.Tensor, pattern: regex.Pattern) -> tuple[list[str], np.ndarray]:
        """Like ``decode``, but every reading follows ``pattern`` (``ocr_core.formats``) where one can."""

    def sample_losses(self, log_probs: torch.Tensor, labels: Sequence[str]) -> np.ndarray:
        """Per-sample negative log-likelihood of ``labels`` (float32; NaN where unrepresentable)."""

    def sequence_log_likelihoods(self, log_probs: torch.Tensor, labels: Sequence[str]) -> torch.Tensor:
        """Differentiable per-sample log-likelihood of ``labels`` (float32; -inf where unrepresentable)."""

    def training_loss(self, logits: torch.Tensor, labels: Sequence[str]) -> torch.Tensor:
        """Batch-mean loss per label character, for backpropagation."""

    def glyph_matrix(self, probs: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """One sample's probabilities (T, C) as (T, K) with a glyph per column, for the heatmap."""

    def alternatives(self, probs: np.ndarray, n: int = 5) -> list[tuple[str, float]]:
        """The ``n`` most probable readings of one sample's probability matrix (T, C)."""

    def unreadable(self, label: str, steps: int) -> str:
        """Why the head can never read ``label`` with ``steps`` outputs, or ``""`` when it can."""

    def to_dict(self) -> dict[str, Any]:
        """The head as checkpoint metadata (``head_from_dict`` reverses it)."""


@dataclass(frozen=True)
class CTCHead:
    """Connectionist temporal classification over ``chars`` with a configurable token layout."""

    chars: str
    blank: int = 0
    first: int = 1
    extra: int = 0  # output columns past the characters that are never read (e.g. a trailing PAD)

    kind: ClassVar[str] = "ctc"
    matrix_title: ClassVar[str] = "Probabilities per time step"
    row_name: ClassVar[str] = "time step"
    counts_time_steps: ClassVar[bool] = True

    def __post_init__(self) -> None:
        Vocab(self.chars)  # duplicates raise ValueError
        if self.blank < 0 or self.first < 0 or self.extra < 0:
            raise ValueError("CTC token ids must be non-negative")
        if self.first <= self.blank < self.first + len(self.chars):
            raise ValueError(f"the CTC blank id {self.blank} falls among the character ids")

    @property
    def vocab(self) -> Vocab:
        return Vocab(self.chars)

    @property
    def num_classes(self) -> int:
        """Output columns: blank, reserved tokens, characters and extras."""
        return max(self.blank, self.first + len(self.chars) - 1) + 1 + self.extra

    @property
    def output_classes(self) -> int:
        return self.num_classes

    def _id_to_char(self) -> list[str]:
        table = [""] * self.num_classes
        for i, c in enumerate(self.chars):
            table[self.first + i] = c
        return table

    def encode(self, text: str) -> list[int]:
        """Ids of the characters of ``text`` that the head knows (others are dropped)."""
        index = {c: self.first + i for i, c in enumerate(self.chars)}
        return [index[c] for c in text if c in index]

    def log_probs(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.float().log_softmax(-1)

    def decode(self, log_probs: torch.Tensor) -> tuple[list[str], np.ndarray]:
        best, ids = log_probs.max(dim=-1)
        # float64: a product of 32 small probabilities underflows float32 and would tie unsure samples at 0.
        confidence = best.double().sum(dim=1).exp().cpu().numpy()
        ids_np = ids.cpu().numpy()
        keep = ids_np != self.blank
        keep[:, 1:] &= ids_np[:, 1:] != ids_np[:, :-1]
        table = np.asarray(self._id_to_char(), dtype=object)
        preds = ["".join(table[row[mask]]) for row, mask in zip(ids_np, keep)]
        return preds, confidence

    def _ctc(self, log_probs: torch.Tensor, labels: Sequence[str], reduction: str) -> torch.Tensor:
        encoded = [self.encode(text) for text in labels]
        targets = torch.tensor([i for ids in encoded for i in ids], dtype=torch.long, device=log_probs.device)
        target_lengths = torch.tensor([len(ids) for ids in encoded], dtype=torch.long, device=log_probs.device)
        n, t, _ = log_probs.shape
        input_lengths = torch.full((n,), t, dtype=torch.long, device=log_probs.device)
        return F.ctc_loss(log_probs.transpose(0, 1), targets, input_lengths, target_lengths,
                          blank=self.blank, reduction=reduction, zero_infinity=reduction != "none")

    def sample_losses(self, log_probs: torch.Tensor, labels: Sequence[str]) -> np.ndarray:
        out = -self.sequence_log_likelihoods(log_probs.detach().cpu(), labels).numpy().astype(np.float32)
        out[~np.isfinite(out)] = np.nan
        return out

    def sequence_log_likelihoods(self, log_probs: torch.Tensor, labels: Sequence[str]) -> torch.Tensor:
        # Over all alignments: two models that place a glyph a step apart still give comparable values.
        return -self._ctc(log_probs.float(), labels, "none")

    def training_loss(self, logits: torch.Tensor, labels: Sequence[str]) -> torch.Tensor:
        # "mean" divides each sample's loss by its label length: a loss per character.
        return self._ctc(self.log_probs(logits), labels, "mean")

    def glyph_matrix(self, probs: np.ndarray) -> tuple[np.ndarray, list[str]]:
        table = self._id_to_char()
        return probs, [BLANK_GLYPH if i == self.blank else (c or RESERVED_GLYPH) for i, c in enumerate(table)]

    def alternatives(self, probs: np.ndarray, n: int = 5, beam_width: int = 8,
                     pattern: regex.Pattern | None = None) -> list[tuple[str, float]]:
        """The ``n`` most probable readings by prefix beam search (following ``pattern`` when given).

        Each beam is a prefix of ids with (p ending in blank, p ending in its last id); with a pattern, a
        prefix whose text can no longer become a match is never extended, and only full matches are ranked.
        """
        table = self._id_to_char()
        viable: dict[str, bool] = {"": True}

        def ok(prefix: tuple[int, ...]) -> bool:
            text = "".join(table[i] for i in prefix)
            if text not in viable:
                viable[text] = is_viable_prefix(pattern, text) if pattern is not None else True
            return viable[text]

        beams: dict[tuple[int, ...], tuple[float, float]] = {(): (1.0, 0.0)}
        candidates = np.argsort(-probs, axis=1)[:, :beam_width]
        for t in range(probs.shape[0]):
            nxt: dict[tuple[int, ...], list[float]] = {}
            for prefix, (p_blank, p_last) in beams.items():
                total = p_blank + p_last
                for c in candidates[t]:
                    p = float(probs[t, c])
                    if c == self.blank:
                        nxt.setdefault(prefix, [0.0, 0.0])[0] += total * p
                    elif prefix and prefix[-1] == c:
                        nxt.setdefault(prefix, [0.0, 0.0])[1] += p_last * p
                        if ok(prefix + (int(c),)):
                            nxt.setdefault(prefix + (int(c),), [0.0, 0.0])[1] += p_blank * p
                    elif ok(prefix + (int(c),)):
                        nxt.setdefault(prefix + (int(c),), [0.0, 0.0])[1] += total * p
            ranked = sorted(nxt.items(), key=lambda kv: -(kv[1][0] + kv[1][1]))[:beam_width]
            beams = {k: (v[0], v[1]) for k, v in ranked}
        readings = [("".join(table[i] for i in prefix), p_b + p_l) for prefix, (p_b, p_l) in beams.items()]
        if pattern is not None:
            readings = [(text, p) for text, p in readings if follows(pattern, text)]
        return sorted(readings, key=lambda r: -r[1])[:n]

    def decode_constrained(self, log_probs: torch.Tensor, pattern: regex.Pattern,
                           beam_width: int = 8) -> tuple[list[str], np.ndarray]:
        """The most probable reading that follows ``pattern`` per sample (its beam probability as the
        confidence); the unconstrained reading where the beam finds none."""
        greedy, greedy_conf = self.decode(log_probs)
        probs = log_probs.exp().double().cpu().numpy()
        preds, confidence = list(greedy), greedy_conf.copy()
        for i, sample in enumerate(probs):
            best = self.alternatives(sample, n=1, beam_width=beam_width, pattern=pattern)
            if best:
                preds[i], confidence[i] = best[0]
        return preds, confidence

    def unreadable(self, label: str, steps: int) -> str:
        # A repeated character needs a blank between its copies: len + repeats steps at least.
        need = len(label) + repeat_count(label)
        return f"needs {need} time steps, the model has {steps}" if need > steps else ""

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "chars": self.chars, "blank": self.blank, "first": self.first,
                "extra": self.extra}


@dataclass(frozen=True)
class FixedHead:
    """Cross-entropy over ``positions`` outputs; position 0 uses ``first_chars`` when it is set."""

    chars: str
    positions: int
    first_chars: str = ""

    kind: ClassVar[str] = "fixed"
    matrix_title: ClassVar[str] = "Probabilities per position"
    row_name: ClassVar[str] = "position"
    counts_time_steps: ClassVar[bool] = False

    def __post_init__(self) -> None:
        Vocab(self.chars)
        Vocab(self.first_chars)
        if self.positions < 1:
            raise ValueError("a fixed head needs at least one position")
        if not self.chars:
            raise ValueError("a fixed head needs a character set")

    @property
    def position_chars(self) -> list[str]:
        """The character set of every position."""
        if self.first_chars:
            return [self.first_chars] + [self.chars] * (self.positions - 1)
        return [self.chars] * self.positions

    @property
    def vocab(self) -> Vocab:
        seen = dict.fromkeys(self.first_chars + self.chars)
        return Vocab("".join(seen))

    @property
    def output_classes(self) -> tuple[int, ...]:
        return tuple(len(chars) for chars in self.position_chars)

    def _mask(self, device: torch.device) -> torch.Tensor:
        width = max(self.output_classes)
        mask = torch.zeros(self.positions, width, dtype=torch.bool, device=device)
        for p, size in enumerate(self.output_classes):
            mask[p, size:] = True
        return mask

    def encode(self, text: str) -> list[int]:
        """Class index per position; -100 (ignored) everywhere when the head cannot represent ``text``."""
        sets = self.position_chars
        if len(text) != self.positions or any(c not in chars for c, chars in zip(text, sets)):
            return [-100] * self.positions
        return [chars.index(c) for c, chars in zip(text, sets)]

    def log_probs(self, logits: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if logits.shape[1] != self.positions:
            raise ValueError(f"model gives {logits.shape[1]} positions, the head expects {self.positions}")
        return logits.masked_fill(self._mask(logits.device)[:, : logits.shape[2]], _MASKED).log_softmax(-1)

    def decode(self, log_probs: torch.Tensor) -> tuple[list[str], np.ndarray]:
        best, ids = log_probs.max(dim=-1)
        confidence = best.double().sum(dim=1).exp().cpu().numpy()
        sets = self.position_chars
        preds = ["".join(sets[p][i] for p, i in enumerate(row)) for row in ids.cpu().numpy().tolist()]
        return preds, confidence

    def _targets(self, labels: Sequence[str], device: torch.device) -> torch.Tensor:
        return torch.tensor([self.encode(text) for text in labels], dtype=torch.long, device=device)

    def sample_losses(self, log_probs: torch.Tensor, labels: Sequence[str]) -> np.ndarray:
        out = -self.sequence_log_likelihoods(log_probs.detach().cpu(), labels).numpy().astype(np.float32)
        out[~np.isfinite(out)] = np.nan
        return out

    def sequence_log_likelihoods(self, log_probs: torch.Tensor, labels: Sequence[str]) -> torch.Tensor:
        targets = self._targets(labels, log_probs.device)
        picked = log_probs.float().gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1).sum(dim=1)
        return picked.masked_fill((targets < 0).any(dim=1), -math.inf)

    def training_loss(self, logits: torch.Tensor, labels: Sequence[str]) -> torch.Tensor:
        log_probs = self.log_probs(logits)
        targets = self._targets(labels, log_probs.device)
        if bool((targets < 0).all()):
            return log_probs.sum() * 0.0  # nothing representable in this batch: no gradient, no NaN
        return F.nll_loss(log_probs.reshape(-1, log_probs.shape[-1]), targets.reshape(-1), ignore_index=-100)

    def glyph_matrix(self, probs: np.ndarray) -> tuple[np.ndarray, list[str]]:
        # Column i means another character at position 0 than after it: map every position onto the vocabulary.
        names = self.vocab.chars
        column = {c: i for i, c in enumerate(names)}
        out = np.zeros((self.positions, len(names)), dtype=probs.dtype)
        for p, chars in enumerate(self.position_chars):
            out[p, [column[c] for c in chars]] = probs[p, : len(chars)]
        return out, list(names)

    def alternatives(self, probs: np.ndarray, n: int = 5, pattern: regex.Pattern | None = None,
                     beam_width: int = 0) -> list[tuple[str, float]]:
        """The ``n`` most probable combinations of per-position choices (positions are independent),
        following ``pattern`` when given."""
        width = max(n, beam_width)
        beams: list[tuple[float, str]] = [(1.0, "")]
        for p, chars in enumerate(self.position_chars):
            row = probs[p, : len(chars)]
            top = np.argsort(-row)[: max(width, 8) if pattern is not None else width]
            grown = ((q * float(row[i]), text + chars[i]) for q, text in beams for i in top)
            if pattern is not None:
                grown = (b for b in grown if is_viable_prefix(pattern, b[1]))
            beams = heapq.nlargest(width, grown)
        if pattern is not None:
            beams = [b for b in beams if follows(pattern, b[1])]
        return [(text, q) for q, text in beams[:n]]

    def decode_constrained(self, log_probs: torch.Tensor, pattern: regex.Pattern,
                           beam_width: int = 8) -> tuple[list[str], np.ndarray]:
        """The most probable reading that follows ``pattern`` per sample; the unconstrained one where none does."""
        preds, confidence = self.decode(log_probs)
        probs = log_probs.exp().double().cpu().numpy()
        for i, sample in enumerate(probs):
            best = self.alternatives(sample, n=1, pattern=pattern, beam_width=beam_width)
            if best:
                preds[i], confidence[i] = best[0]
        return preds, confidence

    def unreadable(self, label: str, steps: int) -> str:  # noqa: ARG002 - positions are fixed
        if len(label) != self.positions:
            return f"has {len(label)} characters, the model reads exactly {self.positions}"
        for p, (c, chars) in enumerate(zip(label, self.position_chars)):
            if c not in chars:
                return f"character {c!r} cannot appear at position {p + 1}"
        return ""

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "chars": self.chars, "positions": self.positions,
                "first_chars": self.first_chars}


HEAD_KINDS = ("ctc", "fixed")


def head_from_dict(spec: dict[str, Any]) -> CTCHead | FixedHead:
    """The head described by checkpoint metadata.

    Raises:
        ValueError: unknown head type or invalid fields.
    """
    if not isinstance(spec, dict):
        raise ValueError(f"head must be a dict, not {type(spec).__name__}")
    kind = spec.get("type")
    fields = {k: v for k, v in spec.items() if k != "type"}
    try:
        if kind == "ctc":
            return CTCHead(str(fields["chars"]), int(fields.get("blank", 0)), int(fields.get("first", 1)),
                           int(fields.get("extra", 0)))
        if kind == "fixed":
            return FixedHead(str(fields["chars"]), int(fields["positions"]), str(fields.get("first_chars", "")))
    except KeyError as exc:
        raise ValueError(f"{kind} head has no {exc.args[0]!r}") from None
    raise ValueError(f"unknown head type {kind!r}; choose one of {', '.join(HEAD_KINDS)}")


def head_for_labels(kind: str, labels: Sequence[str], vocab: Vocab | None = None, positions: int = 0,
                    separate_first: bool = False) -> CTCHead | FixedHead:
    """A new head of ``kind`` for training on ``labels`` (``vocab`` gives the character order, if any).

    A fixed head reads ``positions`` characters (default: the most common label length); with
    ``separate_first`` its position 0 gets the characters seen there and the others the rest.
    """
    vocab = vocab if vocab is not None else Vocab.from_labels(labels)
    if kind == "ctc":
        return CTCHead(vocab.chars)
    if kind != "fixed":
        raise ValueError(f"unknown head type {kind!r}; choose one of {', '.join(HEAD_KINDS)}")
    if not positions:
        lengths = [len(t) for t in labels if t]
        positions = max(set(lengths), key=lengths.count) if lengths else 1
    if not separate_first:
        return FixedHead(vocab.chars, positions)
    first = {t[0] for t in labels if t}
    rest = {c for t in labels for c in t[1:]}
    return FixedHead("".join(c for c in vocab.chars if c in rest or c not in first), positions,
                     "".join(c for c in vocab.chars if c in first))
