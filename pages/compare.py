"""Compare: two checkpoints on the same dataset; what B fixes, what B breaks, and where accuracy moved."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from ocr_core import workspace
from ocr_core.analysis import compare_frames, confusion_delta, delta_by
from ocr_core.errors import InputError
from ocr_core.score import summarize

import choices
import loaders
import widgets


def checkpoint_b_ui(a: str) -> str | None:
    """Checkpoint B: any known checkpoint other than A (the sidebar's), or a path (a .pt or .onnx model, or a
    predictions file of another OCR system)."""
    options = {k: v for k, v in loaders.checkpoint_options().items() if k != a}
    if len(options) == 1:
        st.caption("Only one checkpoint is known so far: train a run on the Train page, or give a path.")
    # The demo opens on its shipped baseline, the comparison the demo is for; anything else starts empty, so
    # nothing is scored until the user has chosen B.
    baseline = str(choices.baseline_checkpoint()) if a == str(workspace.DEMO_CHECKPOINT) else None
    return widgets.path_picker("Checkpoint B", options, "compare_b", placeholder="best.pt, model.onnx or predictions.csv",
                               help="A is the checkpoint picked in the sidebar", choose="Choose checkpoint B…",
                               default=baseline)


def headline_ui(a: loaders.Scored, b: loaders.Scored) -> None:
    """Accuracy and CER of A and B with B's deltas."""
    sa = loaders.memo(a.key, "summary", lambda: summarize(a.frame))
    sb = loaders.memo(b.key, "summary", lambda: summarize(b.frame))
    cells = st.columns(4)
    cells[0].metric("Accuracy A", widgets.percent(sa.accuracy, 2))
    accuracy_delta, cer_delta = sb.accuracy - sa.accuracy, sb.cer - sa.cer
    cells[1].metric("Accuracy B", widgets.percent(sb.accuracy, 2),
                    delta=f"{100 * accuracy_delta:+.2f} pp" if accuracy_delta else None)
    cells[2].metric("CER A", f"{sa.cer:.4f}")
    cells[3].metric("CER B", f"{sb.cer:.4f}", delta=f"{cer_delta:+.4f}" if cer_delta else None,
                    delta_color="inverse")


def changes_ui(a: loaders.Scored, joined: pd.DataFrame) -> None:
    """Galleries of the samples B fixes and the samples B breaks."""
    counts = joined["change"].value_counts()
    kinds = ("fixed", "broken", "both wrong", "both right")
    st.markdown(" · ".join(f"**{counts.get(k, 0):,}** {k}" for k in kinds))
    names = [f"Fixed by B ({counts.get('fixed', 0)})", f"Broken by B ({counts.get('broken', 0)})"]
    # Open on the tab with samples in it: an empty "fixed" tab must not hide 243 broken samples.
    opened = names[1] if counts.get("fixed", 0) == 0 and counts.get("broken", 0) > 0 else names[0]
    tabs = st.tabs(names, default=opened)
    for tab, change, side, other in ((tabs[0], "fixed", "a", "b"), (tabs[1], "broken", "b", "a")):
        with tab:
            rows = joined[joined["change"] == change]
            if rows.empty:
                widgets.empty_state(f"No sample is {change} by B.")
                continue
            # Cards show the wrong reading (A's for fixed samples, B's for broken ones) against the label.
            view = rows.rename(columns={f"pred_{side}": "pred", f"cer_{side}": "cer",
                                        f"confidence_{side}": "confidence"})
            view = view.sort_values("cer", ascending=False).head(24)
            readings = dict(zip(rows["sample"], rows[f"pred_{other}"]))
            widgets.gallery(view, key=f"compare_{change}",
                            caption=lambda r, o=other, d=readings: f"{o.upper()} reads {d[int(r['sample'])]}")
            if len(rows) > 24:
                st.caption(f"Showing 24 of {len(rows)}.")


def deltas_ui(a: loaders.Scored, b: loaders.Scored) -> None:
    """Per-province accuracy deltas and the confused pairs whose counts changed most."""
    left, right = st.columns(2)
    with left:
        provinces = loaders.memo(f"{a.key}|{b.key}", "delta by province", lambda: delta_by(a.frame, b.frame, "province"))
        # Percentage points with one decimal: a "+.0%" axis labelled a +0.34 pp change "+0%" on every tick.
        provinces = provinces.assign(delta_pp=100 * provinces["delta"])
        fig = px.bar(provinces, x="province", y="delta_pp",
                     hover_data={"n": True, "accuracy_a": ":.3f", "accuracy_b": ":.3f", "delta_pp": ":+.2f"},
                     color=provinces["delta"] >= 0, color_discrete_map={True: "#16a34a", False: "#dc2626"},
                     labels={"delta_pp": "B − A (pp)"})
        fig.update_layout(showlegend=False)
        fig.update_xaxes(type="category", title=None)
        # A symmetric range of at least ±1 pp, so one small change does not fill the chart.
        reach = max(1.0, 1.2 * float(provinces["delta_pp"].abs().max()))  # max(1.0, nan) is 1.0
        fig.update_yaxes(title="accuracy B − A (pp)", tickformat="+.1f", range=[-reach, reach],
                         zeroline=True, zerolinecolor="#6b7280")
        st.plotly_chart(widgets.style_figure(fig, 320, "Accuracy delta per province"),
                        key="compare_provinces")
    with right:
        st.markdown("**Confused pairs whose counts changed most**")
        deltas = loaders.memo(f"{a.key}|{b.key}", "confusion delta", lambda: confusion_delta(a.edits, b.edits))
        if deltas.empty:
            widgets.empty_state("No confusion count changed.")
        else:
            view = deltas.assign(pair=[f"{t} → {p}" for t, p in zip(deltas["true"], deltas["pred"])])
            st.dataframe(view[["pair", "count_a", "count_b", "delta"]], hide_index=True, height=300,
                         column_config={"count_a": st.column_config.NumberColumn("A"),
                                        "count_b": st.column_config.NumberColumn("B"),
                                        "delta": st.column_config.NumberColumn("B − A", format="%+d")})


def main() -> None:
    """Draw the page."""
    selection = loaders.current_selection()
    a_path = selection.checkpoint
    st.caption(f"A: `{a_path}` (sidebar) · dataset: {loaders.dataset_label(selection.dataset or '')}")
    b_path = checkpoint_b_ui(a_path or "")
    if not b_path:
        st.info("Pick or enter checkpoint B to compare with A.")
        return
    a = loaders.scored_or_stop()
    try:
        b = loaders.scored_like(b_path, a, selection.dataset, selection.tta)
    except InputError as exc:
        st.error(str(exc))
        return
    headline_ui(a, b)
    loaders.leakage_ui(a, "checkpoint A", key="compare_leakage_a")
    loaders.leakage_ui(b, "checkpoint B", key="compare_leakage_b")
    joined = loaders.shared(f"{a.key}|{b.key}", "compare", lambda: compare_frames(a.frame, b.frame))
    changes_ui(a, joined)
    st.divider()
    deltas_ui(a, b)


main()
