"""Overview: corpus metrics of the selected checkpoint on the selected dataset, and where it fails."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import plotly.express as px
import streamlit as st

from ocr_core.analysis import (accuracy_by, cer_histogram, error_type_counts, is_plate_domain, needs_more_steps,
                               position_accuracy, repeats, telling_slices)
from ocr_core.formats import format_report
from ocr_core.frame import attribute_columns
from ocr_core.report import build_report
from ocr_core.score import Summary, summarize

import loaders
import widgets


def metrics_ui(scored: loaders.Scored, before: Summary | None = None) -> None:
    """The five headline numbers; with ``before`` (the metrics on the original labels), how the label
    corrections moved them."""
    summary = loaders.memo(scored.key, "summary", lambda: summarize(scored.frame))
    cells = st.columns(5)
    moved = before is not None
    samples_delta = summary.n - before.n if moved else 0
    accuracy_delta = summary.accuracy - before.accuracy if moved else 0.0
    cer_delta = summary.cer - before.cer if moved else 0.0
    cells[0].metric("Samples", f"{summary.n:,}", delta=f"{samples_delta:+,}" if samples_delta else None,
                    delta_color="off")
    cells[1].metric("Accuracy", widgets.percent(summary.accuracy, 2), help="exact-plate accuracy",
                    delta=f"{100 * accuracy_delta:+.2f} pp" if accuracy_delta else None)
    cells[2].metric("CER", f"{summary.cer:.4f}", delta=f"{cer_delta:+.4f}" if cer_delta else None,
                    delta_color="inverse", help="corpus character error rate (edits / label characters)")
    confidence = "n/a" if math.isnan(summary.mean_confidence) else f"{summary.mean_confidence:.3f}"
    cells[3].metric("Mean confidence", confidence,
                    help="probability of the reading under the model (n/a: the predictions hold none)")
    cells[4].metric("OOV labels", f"{summary.oov:,}",
                    help="labels with characters outside the model's vocabulary")


def doubled_ui(scored: loaders.Scored) -> None:
    """Accuracy of labels with and without doubled characters, and, for a model with time steps, how many
    labels need more of them than it has (a repeat needs a blank between its copies)."""
    frame = scored.frame
    table = loaders.memo(scored.key, "by doubled", lambda: accuracy_by(
        frame.assign(doubled=(repeats(frame["label"]) > 0).map({True: "doubled", False: "no repeat"})), "doubled"))
    if table["n"].sum() and (table["doubled"] == "doubled").any():
        accuracy_bar(table, "doubled", "Accuracy of labels with doubled characters (ff, nn …)", order="key")
    steps = scored.loaded.meta.get("time_steps") if scored.loaded is not None else None
    if steps and scored.loaded.head.counts_time_steps:
        short = int(loaders.memo(scored.key, f"beyond {steps} steps", lambda: needs_more_steps(frame, steps).sum()))
        note = (f"**{short:,}** labels need more than the model's {steps} time steps (length plus one per "
                "doubled character): it can never read them; filter them on Worst predictions."
                if short else f"Every label fits the model's {steps} time steps, doubled characters included.")
        st.caption(note)


def report_ui(scored: loaders.Scored, dataset: str) -> None:
    """One click: the whole analysis as one HTML file that opens offline (built when clicked), with the
    robustness curves of this checkpoint on this dataset when the Robustness page has computed them."""
    def document() -> bytes:
        curves = loaders.kept_robustness(scored)
        return build_report(scored.frame, "PlateLens report", Path(scored.checkpoint).name, dataset,
                            robustness=curves).encode("utf-8")

    st.download_button("Download the report (HTML, opens offline)", key="overview_report", on_click="ignore",
                       data=document, file_name="platelens-report.html", mime="text/html")


def format_ui(scored: loaders.Scored) -> None:
    """How many readings are impossible plates, when the labels follow a known plate format."""
    report = loaders.memo(scored.key, "format report",
                          lambda: format_report(scored.frame["label"].tolist(), scored.frame["pred"].tolist()))
    if report is None:
        return
    share = report.violations / max(report.n, 1)
    st.caption(f"**{report.violations:,}** of {report.n:,} readings ({share:.1%}) break the `{report.name}` "
               f"plate format that the labels follow. Constrained decoding (`score --format {report.name}`) "
               "reads the most probable plate that fits instead.")


def _order_key(value: object) -> tuple[float, str]:
    # Binned numeric attributes come back as "24–28" (analysis.readable_bins): order by the lower edge.
    text = str(value)
    try:
        return float(text.split("–")[0]), text
    except ValueError:
        return float("inf"), text


def upright_labels(fig) -> None:
    """Bar values written horizontally above the bars (plotly turns text inside narrow bars sideways)."""
    fig.update_traces(textangle=0, textposition="outside", cliponaxis=False, textfont_size=11)
    fig.update_xaxes(tickangle=0)


def accuracy_bar(table: pd.DataFrame, column: str, title: str, order: str = "n") -> None:
    """Accuracy per value of ``column`` as a bar chart, sample counts in the hover.

    ``order``: ``n`` (largest group first, as given), ``key`` (by value or bin) or ``accuracy`` (worst first).
    """
    if table.empty:
        widgets.empty_state(f"No samples to group by {column}.")
        return
    if order == "key":
        table = table.sort_values(column, key=lambda col: col.map(_order_key), kind="stable")
    elif order == "accuracy":
        table = table.sort_values(["accuracy", "n"], ascending=[True, False], kind="stable")
    table = table.assign(**{column: table[column].astype(str)})
    fig = px.bar(table, x=column, y="accuracy", hover_data={"n": True, "cer": ":.4f", "accuracy": ":.3f"},
                 range_y=[0, 1.12], text_auto=".2f")
    upright_labels(fig)
    fig.update_xaxes(type="category", title=None)
    fig.update_yaxes(tickvals=[0, 0.2, 0.4, 0.6, 0.8, 1.0])
    st.plotly_chart(widgets.style_figure(fig, 300, title))


def slices_ui(scored: loaders.Scored) -> None:
    """Accuracy by province (plates) or by doubled characters (other text), by label length, per position,
    error types and the CER histogram."""
    frame = scored.frame
    plates = loaders.memo(scored.key, "plate domain", lambda: is_plate_domain(frame["label"].tolist()))
    left, right = st.columns([3, 2])
    with left:
        if plates:
            accuracy_bar(loaders.memo(scored.key, "by province", lambda: accuracy_by(frame, "province")),
                         "province", "Accuracy by first character (province), worst first", order="accuracy")
        else:
            doubled_ui(scored)
    with right:
        accuracy_bar(loaders.memo(scored.key, "by length", lambda: accuracy_by(frame, "label_len")), "label_len",
                     "Accuracy by label length", order="key")
    if plates:
        doubled_ui(scored)

    left, middle, right = st.columns(3)
    with left:
        positions = loaders.memo(scored.key, "positions", lambda: position_accuracy(frame))
        if positions.empty:
            widgets.empty_state("No samples.")
        else:
            length = loaders.memo(scored.key, "modal length", lambda: int(frame["label_len"].mode().iloc[0]))
            fig = px.bar(positions, x="position", y="accuracy", range_y=[0, 1.12], text_auto=".2f",
                         hover_data={"n": True, "accuracy": ":.3f"})
            upright_labels(fig)
            fig.update_xaxes(dtick=1)
            fig.update_yaxes(tickvals=[0, 0.2, 0.4, 0.6, 0.8, 1.0])
            title = f"Per-position accuracy ({length}-character labels)"
            st.plotly_chart(widgets.style_figure(fig, 300, title))
    with middle:
        counts = loaders.memo(scored.key, "error types", lambda: error_type_counts(scored.edits))
        counts = counts.rename_axis("error type").reset_index(name="count")
        fig = px.bar(counts, x="error type", y="count", color="error type", text_auto=True,
                     color_discrete_map={k: v[0] for k, v in widgets.DIFF_COLOURS.items()})
        fig.update_traces(marker_line_color="#6b7280", marker_line_width=1)
        upright_labels(fig)
        fig.update_layout(showlegend=False)
        st.plotly_chart(widgets.style_figure(fig, 300, "Character errors by type"))
    with right:
        # Binned here: sending 100,000 raw values to the browser for plotly to bin is what makes it slow.
        histogram = loaders.memo(scored.key, "cer histogram", lambda: cer_histogram(frame["cer"]))
        fig = px.bar(histogram, x="cer", y="samples", log_y=True, hover_data={"range": True, "cer": False})
        fig.update_traces(marker_line_width=0)
        fig.update_layout(bargap=0.05)
        fig.update_xaxes(title="CER per sample")
        fig.update_yaxes(title="samples (log)", dtick=1)
        st.plotly_chart(widgets.style_figure(fig, 300, "CER histogram"))


def attributes_ui(scored: loaders.Scored) -> None:
    """Accuracy sliced by any other attribute of the samples (source, size, CCPD brightness and blur…)."""
    # Core columns are outcomes or have their own chart; a new core column (label_issue) stays out by itself.
    columns = attribute_columns(scored.frame)
    if not columns:
        return
    # The slice whose values differ most in accuracy comes first, so the default slice says something.
    columns = loaders.memo(scored.key, "telling slices", lambda: telling_slices(scored.frame, columns, bins=8))
    left, right = st.columns([1, 4])
    # Keyed by the frame: a slice picked for one dataset is not kept for another, whose best slice differs.
    column = left.selectbox("Slice accuracy by", columns, key=f"overview_attribute:{scored.key}",
                            help="ordered by how much accuracy differs across the values; numeric attributes "
                                 "are cut into 8 bins")
    with right:
        table = loaders.memo(scored.key, f"by {column}", lambda: accuracy_by(scored.frame, column, bins=8))
        accuracy_bar(table, column, f"Accuracy by {column}", order="key")


APPLY_KEY = "apply_corrections"


def _remember_apply() -> None:
    # The toggle's own state goes when another page is shown; this copy keeps the choice.
    st.session_state[f"{APPLY_KEY}:chosen"] = st.session_state[APPLY_KEY]


def corrections_ui(scored: loaders.Scored) -> tuple[loaders.Scored, Summary | None]:
    """The dataset's label corrections (written on Worst predictions and Review labels): a sidebar toggle,
    on by default, that applies them to this page and its report, and how they move accuracy and CER.

    Returns the frame to show (corrected or not) and, when corrected, the metrics on the original labels.
    """
    path = widgets.corrections_file(scored)
    decisions, problem = widgets.decisions(path)
    if problem:
        st.error(f"{problem}. The metrics below use the original labels.")
        return scored, None
    if not decisions:
        return scored, None
    stat = path.stat()
    stamp = f"{stat.st_mtime_ns}-{stat.st_size}"
    counts = loaders.decision_counts(scored, decisions, stamp)
    if not any(counts.values()):
        return scored, None  # decisions about other images only
    apply = st.sidebar.toggle("Apply label corrections", key=APPLY_KEY, on_change=_remember_apply,
                              value=st.session_state.get(f"{APPLY_KEY}:chosen", True),
                              help=f"the decisions in {path.name}: corrected labels replace the file-name labels "
                                   "and samples marked not valid drop out of the Overview and its report")
    corrected = loaders.with_corrections(scored, decisions, stamp)
    before = loaders.memo(scored.key, "summary", lambda: summarize(scored.frame))
    after = loaders.memo(corrected.key, "summary", lambda: summarize(corrected.frame))
    parts = [f"**{counts['relabel']:,}** relabelled", f"**{counts['invalid']:,}** excluded as not valid",
             f"**{counts['unsure']:,}** unsure"]
    if counts.get("keep"):
        parts.append(f"**{counts['keep']:,}** confirmed right")
    moved = (f"accuracy {widgets.percent(before.accuracy, 2)} → {widgets.percent(after.accuracy, 2)}, "
             f"CER {before.cer:.4f} → {after.cer:.4f}, samples {before.n:,} → {after.n:,}")
    if apply:
        st.info(f"Label corrections applied: {', '.join(parts)}. Original labels → corrected: {moved}. "
                "The deltas below are the corrections' effect.")
        return corrected, before
    st.info(f"Label corrections not applied ({', '.join(parts)}): applying them would move {moved}. "
            "Switch on “Apply label corrections” in the sidebar to see the corrected metrics.")
    return scored, None


def main() -> None:
    """Draw the page."""
    selection = loaders.current_selection()
    raw = loaders.scored_or_stop()
    source = f"{raw.loaded.arch} checkpoint" if raw.loaded is not None else "Predictions file"
    note = loaders.scoring_note(raw.scoring)
    st.caption(f"{source} `{raw.checkpoint}` on "
               f"{loaders.dataset_label(selection.dataset or '')} ({len(raw.frame):,} samples)"
               + (f". {note}" if note else ""))
    loaders.leakage_ui(raw, key="overview_leakage")
    scored, before = corrections_ui(raw)
    metrics_ui(scored, before)
    report_ui(scored, loaders.dataset_label(selection.dataset or ""))
    format_ui(scored)
    if scored.frame["correct"].all():
        widgets.empty_state("Every plate is read correctly: no errors in this dataset.")
    slices_ui(scored)
    attributes_ui(scored)


main()
