"""Error map: crops placed by how the model sees them; select a region to see its samples."""

from __future__ import annotations

import numpy as np
import plotly.express as px
import streamlit as st

from ocr_core.analysis import rank_worst
from ocr_core.error_map import features, in_box, in_polygon, project
from ocr_core.frame import COLUMNS

import loaders
import widgets

MAX_DRAWN = 5000  # points drawn; a selection still applies to every embedded row
# Crops embedded per score frame: the embedding is a forward pass per crop (about 1,000 a second on 2 CPU
# cores), so a larger frame is represented by a fixed random sample of its rows.
MAX_EMBEDDED = 20_000


def embedded_rows(n: int) -> np.ndarray:
    """The rows of an ``n``-row frame that the map embeds: all of them, or a seeded random ``MAX_EMBEDDED``."""
    if n <= MAX_EMBEDDED:
        return np.arange(n)
    return np.sort(np.random.default_rng(0).choice(n, MAX_EMBEDDED, replace=False))


def colour_ui(scored: loaders.Scored) -> str:
    """What colours the points: the outcome, CER, confidence or any attribute."""
    attributes = loaders.memo(scored.key, "varying attributes", lambda: [
        c for c in scored.frame.columns if c not in COLUMNS and scored.frame[c].nunique() > 1])
    return st.selectbox("Colour by", ["correct", "cer", "confidence", "label_len", *attributes], key="map_colour")


def main() -> None:
    """Draw the page."""
    scored = loaders.scored_or_stop()
    if loaders.needs_model(scored, "the error map (it places crops by the model's own features)"):
        return
    rows = embedded_rows(len(scored.frame))
    with st.spinner(f"Embedding {len(rows):,} crops with the model's features (once per score frame)…"):
        points = loaders.memo(scored.key, f"error map {MAX_EMBEDDED}",
                              lambda: project(features(scored.loaded, scored.dataset.images[rows])))
    frame = scored.frame.iloc[rows].assign(x=points[:, 0], y=points[:, 1])
    colour = colour_ui(scored)
    drawn = frame
    if len(rows) < len(scored.frame):
        st.caption(f"The map embeds a random {len(rows):,} of the {len(scored.frame):,} crops and draws "
                   f"{min(MAX_DRAWN, len(rows)):,} of them; a selection takes every embedded crop in its region.")
    elif len(frame) > MAX_DRAWN:
        st.caption(f"Drawing {MAX_DRAWN:,} of {len(frame):,} crops; a selection takes every crop in its region.")
    if len(frame) > MAX_DRAWN:
        drawn = frame.sample(MAX_DRAWN, random_state=0)
    figure = px.scatter(drawn, x="x", y="y", color=drawn[colour].astype(str) if colour == "correct" else colour,
                        hover_data={"label": True, "pred": True, "cer": ":.3f", "x": False, "y": False},
                        color_discrete_map={"True": "#16a34a", "False": "#dc2626"}, opacity=0.7,
                        labels={"x": "first principal axis", "y": "second principal axis"})
    figure.update_traces(marker_size=5)
    figure.update_layout(dragmode="lasso", legend_title_text=colour)
    event = st.plotly_chart(widgets.style_figure(figure, 520, "Crops by the model's features (PCA of what its "
                                                 "output layer reads); box or lasso to select"),
                            key="map_chart", on_select="rerun", selection_mode=("box", "lasso"))
    selection = getattr(event, "selection", None) or {}
    xy = frame[["x", "y"]].to_numpy()
    mask = np.zeros(len(frame), bool)
    for box in selection.get("box", []) or []:
        mask |= in_box(xy, box["x"], box["y"])
    for lasso in selection.get("lasso", []) or []:
        mask |= in_polygon(xy, lasso["x"], lasso["y"])
    if not mask.any():
        st.info("Draw a box or a lasso around a cluster to see its samples, the misread ones first.")
        return
    rows = rank_worst(frame[mask])
    wrong = int((~rows["correct"]).sum())
    st.markdown(f"**{len(rows):,}** crops selected, **{wrong:,}** misread ({wrong / len(rows):.1%}, against "
                f"{(~frame['correct']).mean():.1%} overall); the 24 worst:")
    widgets.flash_ui()
    widgets.gallery(rows.head(24), key="map", corrections=widgets.corrections_file(scored))


main()
