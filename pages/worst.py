"""Worst predictions: a filtered, paged gallery of the samples ranked by CER (or by label-issue score), with
correction buttons on every card, and a detail view of one."""

from __future__ import annotations

import json
import math

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from ocr_core.analysis import ERROR_TYPES, filter_frame, is_plate_domain, rank_worst, top_confusions
from ocr_core.corrections import decision_of, rank_by_label_issue
from ocr_core.heads import BLANK_GLYPH
from ocr_core.score import telling_columns

import augment_spec
import loaders
import widgets

DETAIL_KEY = "worst_detail"
OPEN_KEY = "worst_detail_open"
PAGE_KEY = "worst_page"
ORDERS = {"cer": "Worst CER first", "label_issue": "Highest label-issue score first"}


def filters_ui(scored: loaders.Scored) -> dict:
    """Every filter of ``filter_frame`` as widgets; returns its keyword arguments."""
    frame, edits = scored.frame, scored.edits
    with st.expander("Filters", expanded=True):
        row = st.columns([2, 1, 2, 2])
        province_counts = frame["province"].value_counts()
        plates = loaders.memo(scored.key, "plate domain", lambda: is_plate_domain(frame["label"].tolist()))
        provinces = row[0].multiselect("Province (first character)" if plates else "First character",
                                       province_counts.index.tolist(),
                                       format_func=lambda p: f"{p} ({province_counts[p]})",
                                       key="worst_provinces")
        lengths = row[1].multiselect("Label length", sorted(frame["label_len"].unique().tolist()),
                                     key="worst_lengths")
        error_types = row[2].multiselect("Error type", list(ERROR_TYPES), key="worst_error_types")
        pairs = loaders.memo(scored.key, "top confusions", lambda: top_confusions(edits))  # once per frame
        pair_labels = {f"{t}→{p}": (t, p) for t, p in zip(pairs["true"], pairs["pred"])}
        counts = dict(zip(pair_labels, pairs["count"]))
        confusion = row[3].selectbox("Contains confusion X→Y", [None, *pair_labels], key="worst_confusion",
                                     format_func=lambda k: "any" if k is None else f"{k} ({counts[k]})")
        row = st.columns([2, 2, 1, 2])
        cer_max = max(1.0, math.ceil(float(frame["cer"].max()) * 10) / 10)
        cer_range = row[0].slider("CER range", 0.0, cer_max, (0.0, cer_max), step=0.05, key="worst_cer")
        confidence_range = row[1].slider("Confidence range", 0.0, 1.0, (0.0, 1.0), step=0.01,
                                         key="worst_conf")
        correctness = row[2].radio("Outcome", ["wrong", "all", "correct"], key="worst_correctness")
        with row[3]:
            confident = st.toggle("Confident but wrong (label-error candidates)", key="worst_confident")
            threshold = st.slider("…with confidence at least", 0.5, 1.0, 0.9, step=0.01,
                                  key="worst_threshold", disabled=not confident)
        row = st.columns([2, 3, 3, 2])
        doubled = row[0].selectbox("Doubled characters", ["any", "with", "without"], key="worst_doubled",
                                   help="labels with adjacent repeated characters (ff, nn …)")
        steps = scored.loaded.meta.get("time_steps") if scored.loaded is not None else None
        beyond = False
        if steps and scored.loaded.head.counts_time_steps:
            with row[1]:
                beyond = st.toggle(f"Needs more than the model's {steps} time steps", key="worst_beyond_steps",
                                   help="length plus one step per doubled character: such labels can never be read")
        scored_issues = bool(frame["label_issue"].notna().any())
        why = None if scored_issues else "a predictions file has no label-issue scores (they need the model)"
        with row[2]:
            issue_only = st.toggle("Likely label errors only", key="worst_issue", disabled=not scored_issues,
                                   help=why or "label-issue score: loss of the label minus loss of the reading, "
                                               "how many nats more likely the model finds its reading")
            minimum = st.number_input("…label-issue score at least", value=2.0, step=0.5, key="worst_issue_min",
                                      disabled=not (scored_issues and issue_only))
        order = row[3].selectbox("Order", list(ORDERS), format_func=ORDERS.get, key="worst_order",
                                 disabled=not scored_issues, help=why)
    return {
        "label_issue_min": float(minimum) if issue_only and scored_issues else None,
        "order": order if scored_issues else "cer",
        "doubled": doubled, "beyond_steps": steps if beyond else None,
        "provinces": provinces, "lengths": lengths, "error_types": error_types,
        "confusion": pair_labels.get(confusion) if confusion else None,
        "cer_range": cer_range, "confidence_range": confidence_range, "correctness": correctness,
        "confident_wrong": threshold if confident else None,
    }


def paging_ui(n: int) -> tuple[int, int]:
    """Page size and the first row of the current page."""
    left, middle, _ = st.columns([1, 1, 4])
    size = left.selectbox("Per page", [12, 24, 48], key="worst_page_size")
    pages = max(1, math.ceil(n / size))
    if st.session_state.get(PAGE_KEY, 1) > pages:
        st.session_state[PAGE_KEY] = 1
    page = middle.number_input(f"Page (of {pages})", 1, pages, key=PAGE_KEY)
    return size, (int(page) - 1) * size


def inspect(sample: int) -> None:
    """Card button callback: open this sample's detail in a dialog over the gallery, where the eye is."""
    st.session_state[DETAIL_KEY] = sample
    st.session_state[OPEN_KEY] = True


def export_ui(rows: pd.DataFrame) -> None:
    """Download the filtered rows as CSV (UTF-8 with BOM so spreadsheets read the Chinese glyphs).

    The file is built when the button is clicked, not on every rerun: at 1,000,000 rows building it took
    36.5 s (issue "Scale").
    """
    st.download_button("Export filtered rows as CSV", lambda: rows.to_csv(index=False).encode("utf-8-sig"),
                       file_name="platelens-filtered.csv", mime="text/csv",
                       on_click="ignore")


def heatmap_ui(scored: loaders.Scored, sample: int) -> None:
    """The model's probabilities per time step or position, for the characters that matter, with the label."""
    head = scored.loaded.head
    raw = loaders.sample_probs(scored.key, sample, scored)
    probs, glyphs = head.glyph_matrix(raw)
    row = scored.frame.loc[scored.frame["sample"] == sample].iloc[0]
    label, pred = str(row["label"]), str(row["pred"])
    columns = telling_columns(probs, glyphs, must=label + pred)
    steps = list(range(1, probs.shape[0] + 1))
    fig = go.Figure(go.Heatmap(
        z=probs[:, columns].T, x=steps, y=[glyphs[c] for c in columns],
        colorscale="Blues", zmin=0, zmax=1, colorbar={"title": "p"},
        hovertemplate=f"{head.row_name} %{{x}}<br>%{{y}}: %{{z:.3f}}<extra></extra>",
    ))
    fig.update_yaxes(type="category", autorange="reversed", title=None)
    fig.update_xaxes(title=f"{head.row_name} (label: {label})", dtick=1)
    st.plotly_chart(widgets.style_figure(fig, 140 + 22 * len(columns), head.matrix_title), key="worst_heatmap")
    blank = f" {BLANK_GLYPH} means no character at that step." if BLANK_GLYPH in glyphs else ""
    st.caption(f"Rows: every character above 5% at some {head.row_name}, and those of the label and the "
               f"reading.{blank}")
    st.markdown("**Alternative readings**")
    for text, p in head.alternatives(raw, n=5):
        st.markdown(f'{widgets.reading_html(label, text)} <span style="color:#6b7280;">p = {p:.4f}</span>',
                    unsafe_allow_html=True)


def augmented_ui(scored: loaders.Scored, sample: int, draws: int = 4) -> None:
    """The sample under the augmentation lab's current pipeline, with the model's reading of each draw."""
    settings = st.session_state.get("aug_settings") or augment_spec.default_settings()
    settings_json = json.dumps(settings, sort_keys=True, default=str)
    drawn = loaders.augmented_draws(scored.key, sample, settings_json, draws, scored,
                                    augment_spec.build_pipeline(settings))
    label = str(scored.frame.loc[scored.frame["sample"] == sample, "label"].iloc[0])
    st.markdown("**Under the current augmentation pipeline** (set on the Augmentations page)")
    cells = st.columns(draws)
    for cell, image, pred, conf, params in zip(cells, drawn.images, drawn.preds, drawn.confidences, drawn.params):
        with cell:
            st.image(loaders.upscale(image, 256))
            st.markdown(f"{widgets.reading_html(label, pred)} "
                        f'<span style="color:#6b7280;font-size:0.85em;">conf {conf:.2f}</span>',
                        unsafe_allow_html=True)
            st.caption("; ".join(params) or "no transform applied")


def detail_ui(scored: loaders.Scored, rows: pd.DataFrame) -> None:
    """A large image, the probability heatmap, alternative readings and augmented draws of one sample."""
    ids = rows["sample"].astype(int).tolist()
    if st.session_state.get(DETAIL_KEY) not in ids:
        st.session_state[DETAIL_KEY] = ids[0]
    frame = scored.frame.set_index("sample", drop=False)
    sample = st.selectbox("Sample", ids, key=DETAIL_KEY,
                          format_func=lambda i: f"#{i}  {frame.at[i, 'label']} → {frame.at[i, 'pred']}")
    row = frame.loc[sample]
    left, right = st.columns([2, 3])
    with left:
        st.image(loaders.display_crop(str(row["path"]), 480), width=480)
        st.markdown(widgets.card_html(row), unsafe_allow_html=True)
        st.caption(f"`{row['path']}` · native size {int(row['width'])}×{int(row['height'])} px · "
                   f"loss {float(row['loss']):.3f} (−log p of the label) · "
                   f"label-issue score {float(row['label_issue']):.3f} (loss of the label − loss of the reading)")
        corrections_ui(scored, row)
    with right:
        if not loaders.needs_model(scored, "its probabilities per step or position and alternative readings"):
            heatmap_ui(scored, sample)
    if scored.loaded is not None:
        augmented_ui(scored, sample)


def corrections_ui(scored: loaders.Scored, row: pd.Series) -> None:
    """The decision recorded about the detail's sample and the correction buttons."""
    path = widgets.corrections_file(scored)
    known, problem = widgets.decisions(path)
    if problem:
        st.warning(f"{problem}. Correction buttons are off until it is fixed.")
        return
    decision = decision_of(known, str(row["path"]))
    widgets.flash_ui()
    st.markdown(widgets.decision_html(decision) or
                '<div style="font-size:0.85em;color:#6b7280;">No decision about this sample yet.</div>',
                unsafe_allow_html=True)
    widgets.correction_ui(path, row, decision, f"worst_detail_fix:{int(row['sample'])}")


@st.dialog("Sample detail", width="large")
def detail_dialog(scored: loaders.Scored, rows: pd.DataFrame) -> None:
    """The detail view as a dialog: opened by a card's Inspect button (the sample box inside steps through)."""
    detail_ui(scored, rows)


def main() -> None:
    """Draw the page."""
    scored = loaders.scored_or_stop()
    options = filters_ui(scored)
    minimum, order = options.pop("label_issue_min"), options.pop("order")
    rows = filter_frame(scored.frame, scored.edits, **options)
    if minimum is not None:
        rows = rank_by_label_issue(rows, minimum)
    rows = rank_by_label_issue(rows) if order == "label_issue" else rank_worst(rows)
    head = st.columns([3, 1])
    ranked = ("highest label-issue score first (ties: most confident first)" if order == "label_issue"
              else "worst first (highest CER; ties: most confident first)")
    head[0].markdown(f"**{len(rows):,}** of {len(scored.frame):,} samples match, {ranked}.")
    with head[1]:
        export_ui(rows)
    if rows.empty:
        widgets.empty_state("No errors in this slice: no sample matches these filters.")
        return
    st.markdown(widgets.legend_html(), unsafe_allow_html=True)
    size, start = paging_ui(len(rows))
    widgets.flash_ui()
    widgets.gallery(rows.iloc[start:start + size], on_inspect=inspect, key="worst",
                    corrections=widgets.corrections_file(scored))
    if st.session_state.pop(OPEN_KEY, False):
        detail_dialog(scored, rows)


main()
