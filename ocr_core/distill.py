"""Distillation: trained models (teachers) read each training crop together and teach the model in training.

Models trained apart miss different glyphs where a glyph sits near a decision boundary
(``bench/ensemble_accuracy.py``: two synthetic-only plate models each read 263 of the 297 real province
glyphs, 16 that only one of them reads). A student that learns what they agree on could read like the
ensemble at one model's cost.

The target is one of whole readings, so teachers that align a glyph differently (CTC spikes a step
apart, which blurs a frame-level mean) still agree on what they teach, and any head can take part: for
each training label, the candidates are the label with its character at ``position`` replaced by every
glyph seen there in training (the province glyphs of a plate set). Every teacher scores every candidate
by its head's log-likelihood; the teachers' mean log-likelihood, divided by ``temperature``, is a
distribution over the candidates, and the student's own candidate log-likelihoods are pulled toward it
by a KL divergence, times ``temperature ** 2`` so that its gradient keeps its size across temperatures
(Hinton et al., 2015). The loop adds ``weight`` times this to the head's loss.

With ``other_glyphs`` (``train --distill-other-positions``) each step also distils one more position, the
positions taking turns step by step, so that the teachers teach the letters and digits too and not only
the province glyph, whose teaching alone costs the letters a point (README, Distillation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from ocr_core.checkpoint import LoadedModel, load_model
from ocr_core.device import uses_amp
from ocr_core.errors import InputError
from ocr_core.heads import Head
from ocr_core.preprocess import to_model_input

# A candidate a head cannot represent has log-likelihood -inf; this keeps the softmax finite.
_FLOOR = -1e4


def check_teacher(teacher: LoadedModel, path: str | Path, input_size: tuple[int, int],
                  characters: str) -> None:
    """Refuse a teacher that cannot teach the model in training.

    Raises:
        InputError: ``teacher`` (loaded from ``path``) reads another input size than ``input_size`` (the
            crops are decoded once, at the student's size), or cannot spell a character of ``characters``.
    """
    if teacher.input_size != input_size:
        height, width = teacher.input_size
        raise InputError(f"teacher {path} reads {height}x{width} crops and the model in training "
                         f"{input_size[0]}x{input_size[1]}; give teachers of the student's input size")
    missing = sorted(set(characters) - set(teacher.vocab.chars))
    if missing:
        raise InputError(f"teacher {path} cannot read {''.join(missing)!r}, which the training labels "
                         "hold; give teachers that know every character of the training set")


def load_teachers(paths: Sequence[str | Path], input_size: tuple[int, int],
                  characters: str) -> list[LoadedModel]:
    """The teacher checkpoints at ``paths``, each checked by ``check_teacher``.

    Raises:
        InputError: a checkpoint does not load, or ``check_teacher`` refuses it.
    """
    teachers = []
    for path in paths:
        teacher = load_model(path)
        check_teacher(teacher, path, input_size, characters)
        teacher.model.eval()
        teachers.append(teacher)
    return teachers


def glyphs_at(labels: Sequence[str], position: int) -> str:
    """Every character seen at ``position`` of ``labels``, in first-seen order."""
    return "".join(dict.fromkeys(label[position] for label in labels if len(label) > position))


def glyphs_by_position(labels: Sequence[str], skip: int) -> dict[int, str]:
    """The glyphs seen at every position of ``labels`` but ``skip``, where at least two are seen."""
    longest = max((len(label) for label in labels), default=0)
    glyphs = {position: glyphs_at(labels, position) for position in range(longest) if position != skip}
    return {position: seen for position, seen in glyphs.items() if len(seen) >= 2}


def substitutions(labels: Sequence[str], position: int, glyphs: str) -> tuple[list[int], list[str]]:
    """For each label long enough, itself with its character at ``position`` replaced by every glyph.

    Returns the index of each candidate's label and the candidate texts, ``len(glyphs)`` per label, in the
    order of ``glyphs``.
    """
    rows, texts = [], []
    for i, label in enumerate(labels):
        if len(label) > position:
            rows += [i] * len(glyphs)
            texts += [label[:position] + glyph + label[position + 1:] for glyph in glyphs]
    return rows, texts


@dataclass
class Distiller:
    """What a training run needs to distil: its teachers, the glyphs to choose between and the settings.

    ``glyphs`` are the choices at ``position``, distilled every step; ``other_glyphs`` maps further
    positions to their choices, one of them distilled per step in turn (empty: none).
    """

    teachers: list[LoadedModel]
    glyphs: str
    position: int = 0
    temperature: float = 2.0
    weight: float = 1.0
    other_glyphs: dict[int, str] = field(default_factory=dict)

    def positions_at(self, step: int) -> list[tuple[int, str]]:
        """The positions, with their glyphs, that step ``step`` distils."""
        positions = [(self.position, self.glyphs)]
        if self.other_glyphs:
            other = sorted(self.other_glyphs)[step % len(self.other_glyphs)]
            positions.append((other, self.other_glyphs[other]))
        return positions

    @staticmethod
    def _candidate_log_likelihoods(head: Head, log_probs: torch.Tensor, rows: list[int], texts: list[str],
                                   choices: int) -> torch.Tensor:
        scores = head.sequence_log_likelihoods(log_probs[rows], texts)
        return scores.nan_to_num(nan=_FLOOR, neginf=_FLOOR).clamp(min=_FLOOR).view(-1, choices)

    def _teacher_log_probs(self, crops: torch.Tensor, device: torch.device) -> list[torch.Tensor]:
        outputs = []
        with torch.no_grad():
            for teacher in self.teachers:
                images = to_model_input(crops, teacher.input, device)
                with torch.autocast(device.type, enabled=uses_amp(device)):
                    logits = teacher.model(images)
                outputs.append(teacher.head.log_probs(logits))
        return outputs

    def teacher_targets(self, teacher_log_probs: Sequence[torch.Tensor], rows: list[int], texts: list[str],
                        choices: int) -> torch.Tensor:
        """The teachers' distribution over each label's candidates, (labels, choices), without gradient.

        ``teacher_log_probs`` are the teachers' outputs for the batch, one tensor per teacher; ``choices`` is
        the number of candidates per label (the glyphs they were made of).
        """
        with torch.no_grad():
            scores = torch.stack([
                self._candidate_log_likelihoods(teacher.head, log_probs, rows, texts, choices)
                for teacher, log_probs in zip(self.teachers, teacher_log_probs, strict=True)])
            return (scores.mean(0) / self.temperature).softmax(-1)

    def loss(self, head: Head, log_probs: torch.Tensor, crops: torch.Tensor, labels: Sequence[str],
             device: torch.device, step: int = 0) -> torch.Tensor:
        """``weight`` times the KL divergence of the student's candidate distribution from the teachers'.

        ``log_probs`` are the student's (N, T, C) outputs for ``crops`` (N, H, W, 3 uint8, as the loader
        gives them); ``step`` picks the other position this step distils. Labels too short for a position
        take no part in it; the KL of each position distilled is added.
        """
        total = log_probs.sum() * 0.0
        teacher_log_probs: list[torch.Tensor] | None = None
        for position, glyphs in self.positions_at(step):
            rows, texts = substitutions(labels, position, glyphs)
            if not rows:
                continue
            if teacher_log_probs is None:
                teacher_log_probs = self._teacher_log_probs(crops, device)
            target = self.teacher_targets(teacher_log_probs, rows, texts, len(glyphs))
            student = self._candidate_log_likelihoods(head, log_probs, rows, texts, len(glyphs))
            kl = F.kl_div((student / self.temperature).log_softmax(-1), target, reduction="batchmean")
            total = total + kl
        return self.weight * self.temperature**2 * total
