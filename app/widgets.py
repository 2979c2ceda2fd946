"""Shared drawing: character-level diffs as HTML, gallery cards, and plotly styling that renders CJK glyphs.

The HTML builders are pure functions (unit-tested); ``gallery`` draws them with streamlit.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from ocr_core.analysis import EPSILON, aligned_pairs

import loaders
from choices import path_picker  # noqa: F401 - re-exported for the pages

# Plate glyphs are Chinese: name CJK fonts first so plotly's SVG text does not fall back to tofu boxes.
PLOT_FONT = "Noto Sans CJK SC, Noto Sans SC, Source Han Sans SC, PingFang SC, Microsoft YaHei, sans-serif"

# (background, text) of each alignment kind; the legend and the diff use the same table.
DIFF_COLOURS: dict[str, tuple[str, str]] = {
    "substitution": ("#fde68a", "#854d0e"),
    "insertion": ("#bfdbfe", "#1e3a8a"),
    "deletion": ("#fecaca", "#991b1b"),
}
_CELL = ("display:inline-block;min-width:1.15em;padding:0 0.12em;margin:0 1px;text-align:center;"
         "border-radius:3px;line-height:1.45;")
_ROW_TAG = "display:inline-block;width:2.6em;color:#6b7280;font-size:0.75em;"


def _cell(char: str, kind: str, side: str) -> str:
    text = html.escape(char)
    if char == EPSILON:
        # The missing side of an insertion or deletion: a faint ε keeps the columns aligned.
        bg, _ = DIFF_COLOURS[kind]
        return f'<span style="{_CELL}background:{bg};color:#9ca3af;" title="missing">{text}</span>'
    if kind == "equal":
        return f'<span style="{_CELL}">{text}</span>'
    bg, fg = DIFF_COLOURS[kind]
    strike = "text-decoration:line-through;" if kind == "deletion" and side == "true" else ""
    style = f"{_CELL}background:{bg};color:{fg};font-weight:600;{strike}"
    return f'<span style="{style}" title="{kind}">{text}</span>'


def diff_html(label: str, pred: str) -> str:
    """Ground truth above prediction, aligned character by character, each edit kind in its own colour."""
    pairs = aligned_pairs(label, pred)
    truth = "".join(_cell(t, kind, "true") for kind, t, _ in pairs)
    reading = "".join(_cell(p, kind, "pred") for kind, _, p in pairs)
    if not pairs:
        truth = reading = f'<span style="{_CELL}color:#9ca3af;">(empty)</span>'
    # Shrink to the card instead of scrolling inside it (a scrolled diff looks cut off: "津Y84A2" for
    # "津Y84A26"): a row is the tag (1.95 em) plus per cell 1.39 em and 2 px, so the font is capped at what
    # fits the container's width (cqi, with the container-type on the outer div); 5% spare.
    cells = max(len(pairs), 1)
    fit = f"calc((100cqi - {2 * cells}px) / {1.05 * (1.39 * cells + 1.95):.2f})"
    return (
        '<div style="container-type:inline-size;">'
        f'<div class="pl-diff" style="font-size:min(1.15em, {fit});white-space:nowrap;overflow-x:auto;">'
        f'<div><span style="{_ROW_TAG}">true</span>{truth}</div>'
        f'<div><span style="{_ROW_TAG}">pred</span>{reading}</div></div></div>'
    )


def legend_html() -> str:
    """A one-line key to the diff colours."""
    items = [f'<span style="{_CELL}background:{bg};color:{fg};">{kind}</span>'
             for kind, (bg, fg) in DIFF_COLOURS.items()]
    return f'<div style="font-size:0.85em;color:#4b5563;">Diff colours: {" ".join(items)}</div>'


def reading_html(label: str, pred: str) -> str:
    """A prediction on one line: green when it matches the label, otherwise its diff against the label."""
    if pred == label:
        return f'<span style="color:#15803d;font-weight:600;font-size:1.05em;">{html.escape(pred)} ✓</span>'
    pairs = aligned_pairs(label, pred)
    cells = "".join(_cell(p, kind, "pred") for kind, _, p in pairs if p != EPSILON or kind == "deletion")
    return f'<span style="white-space:nowrap;">{cells}</span>'


def metrics_html(row: pd.Series | dict) -> str:
    """The CER / confidence / sample line of a card (no confidence where the predictions hold none)."""
    confidence = float(row["confidence"])
    conf = "" if math.isnan(confidence) else f" · conf <b>{confidence:.3f}</b>"
    return (
        '<div style="font-size:0.85em;color:#374151;">'
        f'CER <b>{float(row["cer"]):.3f}</b>{conf}'
        f' · <span style="color:#6b7280;">#{int(row["sample"])}</span></div>'
    )


def card_html(row: pd.Series | dict) -> str:
    """The text part of a gallery card: the diff and the metrics line."""
    return diff_html(str(row["label"]), str(row["pred"])) + metrics_html(row)


def style_figure(fig: go.Figure, height: int | None = None, title: str | None = None) -> go.Figure:
    """Apply the dashboard's plotly layout: CJK-capable font, tight margins."""
    fig.update_layout(
        font={"family": PLOT_FONT, "size": 13},
        hoverlabel={"font": {"family": PLOT_FONT}},
        margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
        title=title,
    )
    if height:
        fig.update_layout(height=height)
    return fig


def gallery(
    rows: pd.DataFrame,
    columns: int = 4,
    image_width: int = 240,
    on_inspect: Callable[[int], None] | None = None,
    key: str = "gallery",
    caption: Callable[[pd.Series], str] | None = None,
) -> None:
    """Cards of plate crops with their diff, CER and confidence; an Inspect button with ``on_inspect``.

    Crops are read by each row's ``path`` when a card is drawn: a gallery needs a score frame, not a model
    or a decoded dataset.
    """
    records = list(rows.iterrows())
    for start in range(0, len(records), columns):
        cells = st.columns(columns)
        for cell, (_, row) in zip(cells, records[start:start + columns]):
            with cell.container(border=True):
                st.image(loaders.display_crop(str(row["path"]), image_width), width=image_width)
                st.markdown(card_html(row), unsafe_allow_html=True)
                if caption is not None:
                    st.caption(caption(row))
                if on_inspect is not None:
                    st.button("Inspect", key=f"{key}:inspect:{int(row['sample'])}", on_click=on_inspect,
                              args=(int(row["sample"]),), help="open this sample's detail: a large crop, probabilities, alternative readings, augmented draws")


def empty_state(message: str) -> None:
    """An honest, quiet note for a slice with nothing in it (no icon: an empty slice is neither good nor bad)."""
    st.info(message)


def percent(value: float, digits: int = 1) -> str:
    """A fraction as a percentage, or an en dash for NaN."""
    return "–" if pd.isna(value) else f"{100 * value:.{digits}f}%"

