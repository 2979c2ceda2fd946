"""Worst slices: the attribute values, and pairs of them, where the model fails significantly more often."""

from __future__ import annotations

import streamlit as st

from ocr_core.analysis import rank_worst
from ocr_core.slices import find_worst_slices, slice_rows

import loaders
import widgets


def slices_ui(scored: loaders.Scored):
    """The ranked table of worst slices; returns the chosen slice's row (or None)."""
    slices = loaders.memo(scored.key, "worst slices", lambda: find_worst_slices(scored.frame))
    if slices.empty:
        widgets.empty_state("No slice fails significantly more often than the whole (95% Wilson bound, "
                            "at least 20 samples or 1% of them).")
        return None
    st.caption("Every value of every attribute, and every pair of them, with enough samples; score = the lower "
               "end of the slice's 95% error-rate interval minus the error rate of the whole. Pairs are kept only "
               "when they are worse than both of their parts.")
    view = slices.assign(error_rate=100 * slices["error_rate"], lower=100 * slices["lower"])
    st.dataframe(view[["slice", "n", "errors", "error_rate", "lower", "lift"]], hide_index=True,
                 key="slices_table", column_config={
                     "error_rate": st.column_config.NumberColumn("error rate", format="%.1f%%"),
                     "lower": st.column_config.NumberColumn("95% lower bound", format="%.1f%%"),
                     "lift": st.column_config.NumberColumn("× the whole", format="%.1f"),
                 })
    chosen = st.selectbox("Show the samples of", list(range(len(slices))), key="slices_pick",
                          format_func=lambda i: slices.at[i, "slice"])
    return slices.iloc[int(chosen)]


SHOWN = 24


def slice_samples(scored: loaders.Scored, conditions: tuple) -> tuple[int, int, list]:
    """Rows in the slice, misread rows in it, and the index labels of its ``SHOWN`` worst (cached per frame and
    slice: finding a slice's rows re-derives every attribute of the frame, about a second at 1,000,000 rows)."""
    def compute() -> tuple[int, int, list]:
        rows = slice_rows(scored.frame, conditions)
        wrong = rank_worst(rows[~rows["correct"].astype(bool)])
        return len(rows), len(wrong), wrong.index[:SHOWN].tolist()
    return loaders.memo(scored.key, f"slice rows {conditions!r}", compute)


def main() -> None:
    """Draw the page."""
    scored = loaders.scored_or_stop()
    chosen = slices_ui(scored)
    if chosen is None:
        return
    n, misread, worst = slice_samples(scored, tuple(chosen["conditions"]))
    st.markdown(f"**{misread:,}** of {n:,} samples in **{chosen['slice']}** are misread"
                + (f" (the {SHOWN} worst shown)" if misread > SHOWN else ""))
    widgets.flash_ui()
    widgets.gallery(scored.frame.loc[worst], key="slices", corrections=widgets.corrections_file(scored))


main()
