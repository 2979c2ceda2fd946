"""Find the worst slices of a score frame automatically: attribute values (and pairs of them) whose error
rate is significantly above the whole.

The search (a small SliceLine): every attribute is turned into categories (numbers into equal-width bins
labelled like ``24–28``); every value of one attribute, and every pair of values of two attributes, with at
least ``min_support`` samples is a candidate slice. A slice's score is the lower end of the 95% Wilson
interval of its error rate minus the error rate of the whole frame: positive means "worse than the whole,
and not by chance at this sample size". A pair is kept only when it is worse than both of its one-attribute
parents, so that "皖 & night" does not merely repeat "night". Slices are ranked by score.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ocr_core.analysis import readable_bins, repeats
from ocr_core.frame import COLUMNS

Z95 = 1.959963984540054  # two-sided 95% normal quantile
# Attributes derived from the core columns that are worth slicing by.
DERIVED = ("province", "label_len", "doubled")
MAX_CATEGORIES = 40  # an attribute with more distinct values (paths, ids) is not a slice attribute


@dataclass(frozen=True)
class Slice:
    """A slice: one or two (attribute, value) conditions."""

    conditions: tuple[tuple[str, str], ...]

    def describe(self) -> str:
        """``province = 皖 & height = 24–28``."""
        return " & ".join(f"{column} = {value}" for column, value in self.conditions)


def wilson_lower(errors: np.ndarray, n: np.ndarray, z: float = Z95) -> np.ndarray:
    """Lower bound of the Wilson score interval of a binomial proportion (0 where ``n`` is 0)."""
    n = np.asarray(n, dtype=float)
    p = np.divide(errors, n, out=np.zeros_like(n), where=n > 0)
    denominator = 1 + z * z / np.maximum(n, 1)
    centre = p + z * z / (2 * np.maximum(n, 1))
    margin = z * np.sqrt(p * (1 - p) / np.maximum(n, 1) + z * z / (4 * np.maximum(n, 1) ** 2))
    return np.where(n > 0, (centre - margin) / denominator, 0.0)


def slice_attributes(frame: pd.DataFrame, bins: int = 5) -> pd.DataFrame:
    """Every sliceable attribute of ``frame`` as text categories (numbers in ``bins`` quantile bins)."""
    table = pd.DataFrame(index=frame.index)
    table["province"] = frame["province"].astype(str)
    table["label_len"] = frame["label_len"].astype(str)
    table["doubled"] = np.where(repeats(frame["label"]) > 0, "yes", "no")
    confidence = frame["confidence"]
    if confidence.notna().any() and confidence.nunique(dropna=True) > bins:
        table["confidence"] = readable_bins(confidence, bins).astype(str)
    for column in frame.columns:
        if column in COLUMNS or column in table.columns:
            continue
        values = frame[column]
        if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
            if 1 < values.nunique(dropna=True) <= MAX_CATEGORIES:
                table[column] = values.astype(str)
        elif values.nunique(dropna=True) > bins:
            table[column] = readable_bins(values, bins).astype(str)
        elif values.nunique(dropna=True) > 1:
            table[column] = values.astype(str)
    return table


def find_worst_slices(frame: pd.DataFrame, min_support: int | None = None, pairs: bool = True,
                      top: int = 20, bins: int = 5) -> pd.DataFrame:
    """The slices whose error rate is significantly above the whole, worst first (see the module doc).

    Columns: ``slice`` (text), ``conditions`` (a tuple of (attribute, value)), ``n``, ``errors``,
    ``error_rate``, ``lower`` (Wilson 95% lower bound), ``score`` (lower minus the overall error rate),
    ``lift`` (error rate over the overall one). ``min_support`` defaults to max(20, 1% of the rows).
    """
    n_all = len(frame)
    columns = ["slice", "conditions", "n", "errors", "error_rate", "lower", "score", "lift"]
    if n_all == 0:
        return pd.DataFrame(columns=columns)
    wrong = (~frame["correct"].astype(bool)).to_numpy()
    overall = float(wrong.mean())
    support = min_support if min_support is not None else max(20, math.ceil(0.01 * n_all))
    attributes = slice_attributes(frame, bins)
    attributes["_wrong"] = wrong
    rows: list[dict] = []
    singles: dict[tuple[str, str], float] = {}
    for column in [c for c in attributes.columns if c != "_wrong"]:
        grouped = attributes.groupby(column, observed=True)["_wrong"].agg(["size", "sum"])
        grouped = grouped[grouped["size"] >= support]
        lower = wilson_lower(grouped["sum"].to_numpy(), grouped["size"].to_numpy())
        for (value, size, errors), low in zip(grouped.itertuples(name=None), lower):
            singles[(column, str(value))] = float(errors) / size
            rows.append(_row(((column, str(value)),), int(size), int(errors), float(low), overall))
    if pairs:
        names = [c for c in attributes.columns if c != "_wrong"]
        for i, first in enumerate(names):
            for second in names[i + 1:]:
                grouped = attributes.groupby([first, second], observed=True)["_wrong"].agg(["size", "sum"])
                grouped = grouped[grouped["size"] >= support]
                if grouped.empty:
                    continue
                lower = wilson_lower(grouped["sum"].to_numpy(), grouped["size"].to_numpy())
                for ((a, b), size, errors), low in zip(grouped.itertuples(name=None), lower):
                    rate = float(errors) / size
                    # A pair must add something: worse than each of its parents.
                    if rate <= singles.get((first, str(a)), 1.0) or rate <= singles.get((second, str(b)), 1.0):
                        continue
                    rows.append(_row(((first, str(a)), (second, str(b))), int(size), int(errors), float(low),
                                     overall))
    table = pd.DataFrame(rows, columns=columns)
    table = table[table["score"] > 0].sort_values(["score", "n"], ascending=[False, False], kind="stable")
    return table.head(top).reset_index(drop=True)


def _row(conditions: tuple[tuple[str, str], ...], n: int, errors: int, lower: float, overall: float) -> dict:
    rate = errors / n
    return {"slice": Slice(conditions).describe(), "conditions": conditions, "n": n, "errors": errors,
            "error_rate": rate, "lower": lower, "score": lower - overall,
            "lift": rate / overall if overall > 0 else math.inf}


def slice_rows(frame: pd.DataFrame, conditions: Sequence[tuple[str, str]], bins: int = 5) -> pd.DataFrame:
    """The rows of ``frame`` in a slice found by :func:`find_worst_slices` (same ``bins``)."""
    attributes = slice_attributes(frame, bins)
    mask = np.ones(len(frame), dtype=bool)
    for column, value in conditions:
        mask &= (attributes[column] == value).to_numpy()
    return frame[mask]
