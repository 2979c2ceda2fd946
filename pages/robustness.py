"""Robustness: CER against the severity of six corruptions, for the sidebar's checkpoint and a second one.

Each checkpoint's curves are computed by ``python -m ocr_core robustness`` in a process of its own, started
by ``ocr_core.robustness.launch`` and watched like a training run (its status file holds the state, the
process id and the progress), so the page never blocks and a reload finds the run again. The curves are
kept in the workspace by checkpoint file, dataset fingerprint and settings: computed once, drawn at once
afterwards, and put in the Overview's report.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from ocr_core import workspace
from ocr_core.errors import InputError
from ocr_core.report import robustness_figure
from ocr_core.robustness import (CORRUPTIONS, CURVES_FILE, LEVELS, Settings, job_dir, job_key, job_log_tail,
                                 job_progress, job_state, launch, load_curves)
from ocr_core.roots import confine

import choices
import loaders
import widgets

SEVERITIES = {3: (0.0, 0.5, 1.0), 5: LEVELS}


@st.cache_resource
def _processes() -> list:
    # Popen objects of runs started by this server, polled so finished children are reaped (no zombies).
    return []


def checkpoint_b_ui(a: str) -> str | None:
    """A second checkpoint to draw beside A: Compare's checkpoint B when one is chosen there, the shipped
    baseline for the demo, or none."""
    options = {k: v for k, v in loaders.checkpoint_options().items() if k != a}
    chosen = st.session_state.get("compare_b")
    if chosen == loaders.OTHER:
        chosen = st.session_state.get("compare_b_path") or None
    if chosen and not loaders.is_predictions_file(chosen):
        st.session_state["robustness_b_from_compare"] = chosen  # Compare's widgets are gone on this page
    chosen = st.session_state.get("robustness_b_from_compare")
    if chosen and chosen not in options and chosen != a:
        options = {chosen: f"Compare's checkpoint B ({Path(chosen).name})", **options}
    default = chosen or (str(choices.baseline_checkpoint()) if a == str(workspace.DEMO_CHECKPOINT) else None)
    options = {k: v for k, v in options.items() if not loaders.is_predictions_file(k)}
    return widgets.path_picker("Second checkpoint (optional)", options, "robustness_b",
                               placeholder="best.pt or model.onnx", choose="None: draw A alone", default=default,
                               help="read the same corrupted crops as A; Compare's checkpoint B is the default")


def settings_ui() -> Settings:
    """How many crops to read per level, and how many severities."""
    left, right, _ = st.columns([1, 1, 2])
    limit = left.number_input("Crops per level", 10, 100_000, 300, step=50, key="robustness_limit",
                              help="the first crops of the dataset; every level reads the same ones")
    count = right.selectbox("Severities", list(SEVERITIES), index=1, key="robustness_levels",
                            format_func=lambda n: f"{n}: " + ", ".join(f"{x:g}" for x in SEVERITIES[n]))
    return Settings(int(limit), SEVERITIES[count], tuple(CORRUPTIONS))


def job_of(checkpoint: str, dataset_spec: str, settings: Settings) -> tuple[Path, str]:
    """The job folder of a checkpoint's curves on the dataset, and the dataset path its process reads.

    Raises:
        InputError: a bad checkpoint or dataset.
    """
    loaded = loaders.model(checkpoint)
    data = loaders.dataset(dataset_spec, loaded.input)
    resolved = str(confine(checkpoint, "checkpoint").resolve())
    return job_dir(job_key(resolved, data.fingerprint(), settings)), loaders.resolve_dataset(dataset_spec)


def start(jobs: dict[str, tuple[str, Path, str]], settings: Settings) -> bool:
    """Launch a process for every checkpoint whose curves are not kept or being computed; False (after
    saying why) when one could not be started."""
    for checkpoint, folder, data in jobs.values():
        if job_state(folder) in ("finished", "running"):
            continue
        try:
            _processes().append(launch(checkpoint, data, folder, settings))
        except InputError as exc:
            st.error(str(exc))
            return False
    return True


def named_curves(jobs: dict[str, tuple[str, Path, str]]) -> pd.DataFrame | None:
    """The kept curves of every job, one ``model`` per checkpoint ("A · demo.pt"); None until all are done."""
    tables = []
    for side, (checkpoint, folder, _) in jobs.items():
        curves = load_curves(folder / CURVES_FILE)
        if curves is None:
            return None
        tables.append(curves.assign(model=f"{side} · {Path(checkpoint).name}"))
    return pd.concat(tables, ignore_index=True)


def summary_ui(curves: pd.DataFrame) -> None:
    """Per model: the clean CER and the corruption that hurts most at the strongest severity."""
    lines = []
    for model, rows in curves.groupby("model", sort=False):
        clean = rows.loc[rows["severity"] == rows["severity"].min(), "cer"].mean()
        top = rows[rows["severity"] == rows["severity"].max()].sort_values("cer", ascending=False).iloc[0]
        lines.append(f"**{model}**: CER {clean:.4f} on the crops as they are; {top['corruption']} hurts most "
                     f"(CER {top['cer']:.4f} at severity {top['severity']:g})")
    st.markdown("  \n".join(lines))
    with st.expander("The numbers"):
        table = curves.pivot_table(index=["corruption", "severity"], columns="model", values="cer", sort=False)
        st.dataframe(table.reset_index(), hide_index=True, key="robustness_table",
                     column_config={c: st.column_config.NumberColumn(c, format="%.4f") for c in table.columns})


def monitor_ui(jobs: dict[str, tuple[str, Path, str]], settings: Settings) -> None:
    """Progress of the running processes (polled every 2 s), then the chart once every curve is kept."""
    states = {side: job_state(folder) for side, (_, folder, _) in jobs.items()}
    running = any(state == "running" for state in states.values())

    @st.fragment(run_every=2 if running else None)
    def live() -> None:
        for process in _processes():
            process.poll()
        now = {side: job_state(folder) for side, (_, folder, _) in jobs.items()}
        for side, (checkpoint, folder, _) in jobs.items():
            name = f"{side} · {Path(checkpoint).name}"
            if now[side] == "running":
                progress = job_progress(folder)
                done, total = progress if progress else (0, len(settings.corruptions) * len(settings.levels))
                st.progress(min(1.0, done / max(total, 1)),
                            text=f"{name}: {done} of {total} corruption levels read" if progress
                            else f"{name}: starting (loading the model and decoding the crops)…")
            elif now[side] == "failed":
                st.error(f"{name}: the robustness run failed. Last lines of its log:\n\n```\n"
                         f"{job_log_tail(folder)}\n```")
        curves = named_curves(jobs)
        if curves is not None:
            n = int(curves["n"].iloc[0]) if "n" in curves.columns else settings.limit
            title = f"CER against severity, {n:,} crops" + (", solid A, dashed B" if len(jobs) > 1 else "")
            st.plotly_chart(widgets.style_figure(robustness_figure(curves), 460, title), key="robustness_chart")
            summary_ui(curves)
        elif not any(state == "running" for state in now.values()):
            missing = [f"{side} · {Path(c).name}" for side, (c, folder, _) in jobs.items() if now[side] != "finished"]
            st.info(f"Not computed yet for {', '.join(missing)} with these settings: press the button above.")
        if running and not any(state == "running" for state in now.values()):
            st.rerun()  # the last run ended: draw the page again without the progress bars

    live()


def main() -> None:
    """Draw the page."""
    selection = loaders.current_selection()
    a = selection.checkpoint
    st.caption("CER under six corruptions (blur, noise, JPEG quality, perspective, darkness, occlusion) at rising "
               "severity, every checkpoint reading the same corrupted crops; computed in a background process "
               f"and kept in the workspace. Dataset: {loaders.dataset_label(selection.dataset or '')}.")
    if not a or not selection.dataset:
        st.info("Pick a checkpoint and a dataset in the sidebar.")
        return
    if loaders.is_predictions_file(a):
        st.info("Robustness curves need a model: a predictions file holds readings of the clean crops only.")
        return
    b = checkpoint_b_ui(a)
    settings = settings_ui()
    jobs: dict[str, tuple[str, Path, str]] = {}
    try:
        for side, checkpoint in (("A", a), ("B", b)):
            if checkpoint:
                folder, data = job_of(checkpoint, selection.dataset, settings)
                jobs[side] = (checkpoint, folder, data)
    except InputError as exc:
        st.error(str(exc))
        return
    pending = [side for side, (_, folder, _) in jobs.items() if job_state(folder) in ("none", "failed")]
    label = "Compute the robustness curves" + (f" of {' and '.join(pending)}" if len(jobs) > 1 else "")
    clicked = bool(pending) and st.button(label, type="primary", key="robustness_start")
    if clicked and start({side: jobs[side] for side in pending}, settings):
        st.rerun()  # the button goes; the progress bars come
    monitor_ui(jobs, settings)


main()
