"""Shared drawing: character-level diffs as HTML, gallery cards, and plotly styling that renders CJK glyphs.

The HTML builders are pure functions (unit-tested); ``gallery`` draws them with streamlit.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from ocr_core.analysis import EPSILON, aligned_pairs
from ocr_core.corrections import Correction, append_correction, corrections_path, decision_of, load_corrections
from ocr_core.errors import InputError

import loaders
from choices import path_picker  # noqa: F401 - re-exported for the pages

# Plate glyphs are Chinese: name CJK fonts first so plotly's SVG text does not fall back to tofu boxes.
# "PlateLens Plate Glyphs" is the shipped subset font (.streamlit/config.toml), for machines with none of them.
PLOT_FONT = ("Noto Sans CJK SC, Noto Sans SC, Source Han Sans SC, PingFang SC, Microsoft YaHei, PlateLens Plate Glyphs, "
             "sans-serif")

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
    """The CER / confidence / label-issue / sample line of a card (no confidence or label-issue score where
    the predictions hold none)."""
    confidence = float(row["confidence"])
    conf = "" if math.isnan(confidence) else f" · conf <b>{confidence:.3f}</b>"
    issue_value = float(row.get("label_issue", float("nan")))
    issue = ("" if math.isnan(issue_value) or issue_value == 0 else
             f' · <span title="label-issue score: how many nats more likely the reading is than the label">'
             f'issue <b>{issue_value:.1f}</b></span>')
    return (
        '<div style="font-size:0.85em;color:#374151;">'
        f'CER <b>{float(row["cer"]):.3f}</b>{conf}{issue}'
        f' · <span style="color:#6b7280;">#{int(row["sample"])}</span></div>'
    )


# How a decision reads on a card, and its colour.
DECISION_WORDS: dict[str, tuple[str, str]] = {
    "relabel": ("label is wrong", "#b45309"),
    "invalid": ("not a valid sample", "#991b1b"),
    "unsure": ("unsure", "#4b5563"),
    "keep": ("label is right", "#15803d"),
}


def decision_html(decision: Correction | None) -> str:
    """The decision recorded about a sample, as a one-line badge; empty when there is none."""
    if decision is None:
        return ""
    words, colour = DECISION_WORDS.get(decision.action, (decision.action, "#4b5563"))
    text = f": <b>{html.escape(decision.text)}</b>" if decision.action == "relabel" else ""
    return (f'<div class="pl-decision" style="font-size:0.85em;color:{colour};">'
            f'Decision: {words}{text}</div>')


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


# ---- label corrections ---------------------------------------------------------------------------------

FLASH_KEY = "corrections_flash"


def corrections_file(scored: loaders.Scored) -> Path:
    """Where the decisions about ``scored``'s images are kept: the dataset's corrections file in the
    workspace (a predictions file stands for its dataset when no model was scored)."""
    return corrections_path(scored.dataset.spec if scored.dataset is not None else scored.checkpoint)


@st.cache_data(max_entries=16, show_spinner=False)
def _decisions(path: str, stamp: tuple[int, int]) -> dict[str, Correction]:  # noqa: ARG001 - stamp keys the cache
    return load_corrections(path)


def decisions(path: Path) -> tuple[dict[str, Correction], str]:
    """The current decisions of a corrections file (read again whenever it changes), and why they could
    not be read (empty when they could)."""
    try:
        stat = path.stat()
    except OSError:
        return {}, ""
    try:
        return _decisions(str(path), (stat.st_mtime_ns, stat.st_size)), ""
    except InputError as exc:
        return {}, str(exc)


def decide(path: str, file: str, action: str, text_key: str | None = None) -> None:
    """Button callback: append a decision about ``file`` (the text typed under ``text_key`` for a relabel)
    and leave a one-line message for ``flash_ui``."""
    text = str(st.session_state.get(text_key, "")) if text_key else ""
    try:
        append_correction(path, Correction(file, action, text))
    except (InputError, OSError) as exc:
        st.session_state[FLASH_KEY] = ("error", str(exc))
        return
    words = DECISION_WORDS[action][0]
    shown = f" ({text.strip()})" if action == "relabel" else ""
    st.session_state[FLASH_KEY] = ("success", f"Saved for {Path(file).name}: {words}{shown}.")


def flash_ui() -> None:
    """The message of the last decision (saved, or why not), once."""
    flash = st.session_state.pop(FLASH_KEY, None)
    if flash:
        (st.error if flash[0] == "error" else st.success)(flash[1])


def correction_ui(path: Path, row: pd.Series, decision: Correction | None, key: str) -> None:
    """"Label is wrong" with the corrected text (prefilled with the reading), "Not a valid sample" and
    "Unsure" for one sample; each writes a decision to the corrections file at ``path``."""
    file = str(row["path"])
    text_key = f"{key}:text"
    if text_key not in st.session_state:
        st.session_state[text_key] = decision.text if decision is not None and decision.action == "relabel" \
            else str(row["pred"])
    st.text_input("Corrected label", key=text_key, help="what the image shows; prefilled with the reading")
    with st.container(horizontal=True, gap="small"):
        st.button("Label is wrong", key=f"{key}:relabel", on_click=decide, args=(str(path), file, "relabel", text_key),
                  type="primary", help="replace the label with the text above")
        st.button("Not a valid sample", key=f"{key}:invalid", on_click=decide, args=(str(path), file, "invalid"),
                  help="a sign, a mirrored or unreadable crop: the sample drops out")
        st.button("Unsure", key=f"{key}:unsure", on_click=decide, args=(str(path), file, "unsure"),
                  help="note it; nothing changes")


def gallery(
    rows: pd.DataFrame,
    columns: int = 4,
    image_width: int = 240,
    on_inspect: Callable[[int], None] | None = None,
    key: str = "gallery",
    caption: Callable[[pd.Series], str] | None = None,
    corrections: Path | None = None,
) -> None:
    """Cards of plate crops with their diff, CER and confidence; an Inspect button with ``on_inspect``.

    With ``corrections`` (a corrections file) each card shows the decision recorded about its sample and a
    "Correct" popover with the correction buttons (``correction_ui``).

    Crops are read by each row's ``path`` when a card is drawn: a gallery needs a score frame, not a model
    or a decoded dataset.
    """
    known: dict[str, Correction] = {}
    if corrections is not None:
        known, problem = decisions(corrections)
        if problem:
            st.warning(f"{problem}. Correction buttons are off until it is fixed.")
            corrections = None
    records = list(rows.iterrows())
    for start in range(0, len(records), columns):
        cells = st.columns(columns)
        for cell, (_, row) in zip(cells, records[start:start + columns]):
            with cell.container(border=True):
                st.image(loaders.display_crop(str(row["path"]), image_width), width=image_width)
                st.markdown(card_html(row), unsafe_allow_html=True)
                decision = decision_of(known, str(row["path"])) if known else None
                if decision is not None:
                    st.markdown(decision_html(decision), unsafe_allow_html=True)
                if caption is not None:
                    st.caption(caption(row))
                if on_inspect is None and corrections is None:
                    continue
                with st.container(horizontal=True, gap="small"):
                    if on_inspect is not None:
                        st.button("Inspect", key=f"{key}:inspect:{int(row['sample'])}", on_click=on_inspect,
                                  args=(int(row["sample"]),), help="open this sample's detail: a large crop, probabilities, alternative readings, augmented draws")
                    if corrections is not None:
                        with st.popover("Correct"):
                            correction_ui(corrections, row, decision, f"{key}:fix:{int(row['sample'])}")


def empty_state(message: str) -> None:
    """An honest, quiet note for a slice with nothing in it (no icon: an empty slice is neither good nor bad)."""
    st.info(message)


def percent(value: float, digits: int = 1) -> str:
    """A fraction as a percentage, or an en dash for NaN."""
    return "–" if pd.isna(value) else f"{100 * value:.{digits}f}%"

