"""Character vocabulary for CTC models: characters map to ids 1..N, the CTC blank is id 0."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

BLANK_ID = 0


@dataclass(frozen=True)
class Vocab:
    """An ordered character set; id ``i + 1`` is ``chars[i]`` and id 0 is the CTC blank."""

    chars: str

    def __post_init__(self) -> None:
        if len(set(self.chars)) != len(self.chars):
            raise ValueError(f"vocabulary has duplicate characters: {self.chars!r}")

    @property
    def num_classes(self) -> int:
        """Number of model output classes, blank included."""
        return len(self.chars) + 1

    def __len__(self) -> int:
        return len(self.chars)

    def __contains__(self, char: object) -> bool:
        return isinstance(char, str) and len(char) == 1 and char in self._index

    @property
    def _index(self) -> dict[str, int]:
        # Built lazily and cached on the frozen instance; Vocab is hashed by value, not by this cache.
        cached = self.__dict__.get("_index_cache")
        if cached is None:
            cached = {c: i + 1 for i, c in enumerate(self.chars)}
            object.__setattr__(self, "_index_cache", cached)
        return cached

    def unknown_chars(self, text: str) -> str:
        """Characters of ``text`` that are not in the vocabulary, in order of first appearance."""
        seen: dict[str, None] = {}
        for c in text:
            if c not in self._index:
                seen[c] = None
        return "".join(seen)

    def encode(self, text: str) -> list[int]:
        """Ids of the characters of ``text``; unknown characters are dropped (see ``unknown_chars``)."""
        index = self._index
        return [index[c] for c in text if c in index]

    def decode(self, ids: Iterable[int]) -> str:
        """Text for a sequence of ids (blank and out-of-range ids are skipped, no CTC collapse)."""
        n = len(self.chars)
        return "".join(self.chars[i - 1] for i in ids if 0 < i <= n)

    def ctc_collapse(self, ids: Sequence[int]) -> str:
        """Greedy CTC decoding of one best path: merge repeats, then drop blanks."""
        out: list[int] = []
        prev = -1
        for i in ids:
            if i != prev and i != BLANK_ID:
                out.append(i)
            prev = i
        return self.decode(out)

    def extended(self, labels: Iterable[str]) -> Vocab:
        """This vocabulary plus the new characters of ``labels``, appended in sorted order.

        Existing ids keep their meaning, so a checkpoint's output rows can be reused.
        """
        new = sorted({c for text in labels for c in text} - set(self.chars))
        return Vocab(self.chars + "".join(new))

    @classmethod
    def from_labels(cls, labels: Iterable[str]) -> Vocab:
        """Vocabulary of every character in ``labels``, in sorted code-point order (deterministic)."""
        return cls("".join(sorted({c for text in labels for c in text})))

    @classmethod
    def preset(cls, name: str) -> Vocab:
        """The vocabulary of a synthetic style (``ccpd``, ``ccpd-green``, ``ru``, ``captcha``) or ``plates`` (all CCPD)."""
        from ocr_core.data import synth

        if name == "plates":
            return cls(synth.style_charset("ccpd") + "".join(
                c for c in synth.style_charset("ccpd-green") if c not in synth.style_charset("ccpd")
            ))
        if name not in synth.ALL_STYLES:
            raise ValueError(f"unknown vocabulary preset {name!r}; choose one of plates, {', '.join(synth.ALL_STYLES)}")
        return cls(synth.style_charset(name))
