"""Confusions: the character confusion matrix, the ranked confused pairs, and the samples behind a pair."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from ocr_core.analysis import (EPSILON, confusion_table, glyph_group, glyph_groups, samples_with_confusion,
                               top_confusions)

import loaders
import widgets

PAIR_KEY = "confusion_pair"
GROUPS = {"all": "All characters", "province": "Provinces", "cjk": "CJK", "letter": "Letters", "digit": "Digits",
          "other": "Other"}


def options_ui(groups: list[str]) -> tuple[bool, str, bool]:
    """Hide the diagonal, glyph group (those the data has), and whether to keep only confused characters."""
    left, middle, right = st.columns([1, 2, 1])
    hide_diagonal = left.toggle("Hide the diagonal", value=True, key="confusion_hide_diagonal",
                                help="the diagonal counts correctly read characters")
    if st.session_state.get("confusion_group") not in ("all", *groups):
        st.session_state["confusion_group"] = "all"  # a group the new data does not have
    group = middle.segmented_control("Glyph group", ["all", *groups], format_func=GROUPS.get,
                                     key="confusion_group", default="all", required=True)
    confused_only = right.toggle("Only confused characters", value=True, key="confusion_only_confused")
    return hide_diagonal, group or "all", confused_only


def in_group(char: str, group: str) -> bool:
    """Whether a character (ε always) belongs to the chosen glyph group."""
    return group == "all" or char == EPSILON or glyph_group(char) == group


def matrix(table: pd.DataFrame, group: str, confused_only: bool) -> pd.DataFrame:
    """The confusion table restricted to a glyph group and, optionally, to characters with an error."""
    keep = [c for c in table.index if in_group(c, group)]
    table = table.loc[keep, keep]
    if confused_only:
        off = table.to_numpy().copy()
        np.fill_diagonal(off, 0)
        involved = (off.sum(axis=0) > 0) | (off.sum(axis=1) > 0)
        table = table.loc[involved, involved]
    return table


def heatmap_ui(table: pd.DataFrame, hide_diagonal: bool) -> None:
    """The matrix as a plotly heatmap (log colour, counts in hover); a click picks a pair."""
    counts = table.to_numpy().astype(float)
    if hide_diagonal:
        np.fill_diagonal(counts, np.nan)
    shown = np.where(counts > 0, counts, np.nan)
    labels_x = [str(c) for c in table.columns]
    labels_y = [str(c) for c in table.index]
    fig = go.Figure(go.Heatmap(
        z=np.log10(1 + shown), x=labels_x, y=labels_y, colorscale="YlOrRd", hoverinfo="skip", showscale=True,
        colorbar={"title": "count", "tickvals": [0, 1, 2, 3], "ticktext": ["1", "10", "100", "1000"]},
        xgap=1, ygap=1,
        text=np.where(np.isnan(shown), "", np.nan_to_num(shown).astype(int).astype(str)),
        texttemplate="%{text}" if len(table) <= 36 else None,
    ))
    # Plotly heatmaps cannot be selected; invisible square markers on the non-empty cells can, so a click
    # on a cell selects its pair (and they carry the hover text).
    rows, cols = np.nonzero(~np.isnan(shown))
    fig.add_trace(go.Scatter(
        x=[labels_x[c] for c in cols], y=[labels_y[r] for r in rows], customdata=shown[rows, cols],
        mode="markers", marker={"symbol": "square", "size": 16, "color": "rgba(0,0,0,0)"}, showlegend=False,
        hovertemplate="true %{y} → pred %{x}: %{customdata} <extra></extra>",
    ))
    # Fixed ranges: the marker trace would otherwise pad the axes. Every glyph gets its tick label.
    fig.update_xaxes(title="predicted", type="category", side="top", tickangle=0, tickmode="array",
                     tickvals=labels_x, range=[-0.5, len(labels_x) - 0.5])
    fig.update_yaxes(title="true", type="category", tickmode="array", tickvals=labels_y,
                     range=[len(labels_y) - 0.5, -0.5])
    size = min(1800, max(360, 20 * len(table) + 140))
    fig.update_layout(plot_bgcolor="#f8fafc", xaxis_tickfont_size=12, yaxis_tickfont_size=12)
    st.plotly_chart(widgets.style_figure(fig, size), key="confusion_matrix", on_select=_pick_from_matrix,
                    selection_mode="points")
    st.caption(f"Rows are true characters, columns predicted ones; {EPSILON} marks an insertion "
               f"(row {EPSILON}) or a deletion (column {EPSILON}). Click a cell to see its samples.")


def _pick_from_matrix() -> None:
    points = st.session_state["confusion_matrix"].selection.points
    if points:
        st.session_state[PAIR_KEY] = (str(points[0]["y"]), str(points[0]["x"]))


def _pick_from_table() -> None:
    rows = st.session_state["confusion_table"].selection.rows
    pairs = st.session_state.get("confusion_table_pairs", [])
    if rows and rows[0] < len(pairs):
        st.session_state[PAIR_KEY] = pairs[rows[0]]


def pairs_ui(pairs: pd.DataFrame) -> None:
    """The ranked confused pairs; selecting a row picks the pair."""
    st.session_state["confusion_table_pairs"] = list(zip(pairs["true"], pairs["pred"]))
    view = pairs.assign(pair=[f"{t} → {p}" for t, p in zip(pairs["true"], pairs["pred"])])
    st.dataframe(view[["pair", "count", "samples", "kind", "group"]], hide_index=True, key="confusion_table",
                 on_select=_pick_from_table, selection_mode="single-row", height=460,
                 column_config={"count": st.column_config.NumberColumn("edits"),
                                "samples": st.column_config.NumberColumn("samples")})


def samples_ui(scored: loaders.Scored, pairs: pd.DataFrame) -> None:
    """The samples that contain the chosen pair, as a gallery."""
    options = list(zip(pairs["true"], pairs["pred"]))
    if st.session_state.get(PAIR_KEY) not in options:
        st.session_state[PAIR_KEY] = options[0]
    true, pred = st.selectbox("Confused pair", options, key=PAIR_KEY,
                              format_func=lambda tp: f"{tp[0]} → {tp[1]}",
                              help="or pick a row in the table, or click a cell of the matrix")
    rows = samples_with_confusion(scored.frame, scored.edits, true, pred)
    rows = rows.sort_values(["cer", "confidence"], ascending=[False, False])
    st.markdown(f"**{len(rows)}** sample(s) read **{true}** as **{pred}**"
                + (" (showing the first 24)" if len(rows) > 24 else ""))
    widgets.flash_ui()
    widgets.gallery(rows.head(24), columns=2, key="confusion", corrections=widgets.corrections_file(scored))


def main() -> None:
    """Draw the page."""
    scored = loaders.scored_or_stop()
    groups = loaders.memo(scored.key, "glyph groups",
                          lambda: glyph_groups("".join(set("".join(scored.frame["label"].astype(str))))))
    hide_diagonal, group, confused_only = options_ui(groups)
    # Both count over every label and edit of the frame, so they are computed once per frame, not per click.
    pairs = loaders.memo(scored.key, "top confusions", lambda: top_confusions(scored.edits))
    pairs = pairs[[in_group(t, group) and in_group(p, group) for t, p in zip(pairs["true"], pairs["pred"])]]
    pairs = pairs.reset_index(drop=True)
    counts = loaders.memo(scored.key, "confusion table", lambda: confusion_table(scored.frame, scored.edits))
    table = matrix(counts, group, confused_only)
    if pairs.empty:
        widgets.empty_state(f"No errors in this slice: no {GROUPS[group].lower()} confused on this dataset.")
        return
    heatmap_ui(table, hide_diagonal)
    left, right = st.columns([2, 3], gap="large")
    with left:
        st.markdown("**Most confused pairs**")
        pairs_ui(pairs)
    with right:
        samples_ui(scored, pairs)


main()
