"""Train: start a training run as its own process, watch its curves live, stop it, and list every run.

The run is ``python -m ocr_core train`` started by ``ocr_core.runs.launch_training``; it writes
``history.jsonl`` and ``status.json`` into its run folder, which this page polls. The process does not
belong to the server's script runs, so it survives page reloads and never blocks the app.
"""

from __future__ import annotations

import datetime as _dt
import re
import time
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from ocr_core import workspace
from ocr_core.augment import save_pipeline
from ocr_core.data import synth
from ocr_core.data.sources import list_source
from ocr_core.device import pick_device
from ocr_core.distill import check_teacher
from ocr_core.errors import InputError
from ocr_core.models import ARCHITECTURES, DEFAULT_ARCH
from ocr_core.roots import OUTSIDE_ROOTS, confine, confine_listing
from ocr_core.runs import launch_training, list_runs, progress_line, read_history, run_state, stop_run
from ocr_core.train import FINETUNE_LR, SCRATCH_LR

import augment_spec
import choices
import loaders
import widgets

RUN_KEY = "train_run"
LAB = "__lab__"
SPLIT = "__split__"
NONE = "__none__"


@st.cache_resource
def _processes() -> list:
    # Popen objects of runs started by this server, polled so finished children are reaped (no zombies).
    return []


def arch_label(name: str) -> str:
    """An architecture with its input size, head family and one-line description."""
    spec = ARCHITECTURES[name]
    size = f"{spec.input.channels}×{spec.input.height}×{spec.input.width}"
    return f"{name} · {size} · {spec.head} · {spec.description}"


def source_options(include_embedded: bool) -> dict[str, str]:
    """Training or validation sources: the workspace's synthetic sets, then a path entry."""
    options = {}
    for folder in workspace.synthetic_sets():
        if folder.name == workspace.EMBEDDED_TESTSET:
            if include_embedded:
                options[str(folder)] = f"Embedded synthetic test set ({folder.name})"
            continue
        options[str(folder)] = f"Synthetic: {folder.name}"
    options[loaders.OTHER] = "Other folder or manifest…"
    return options


def generate_ui(have_sets: bool) -> None:
    """Generate a synthetic training set into the workspace (a fresh clone has no training data).

    ``have_sets``: the workspace has a training set or a run (one trained on a folder counts too).
    """
    if not have_sets:
        st.info("The workspace has no training set yet: generate a synthetic one here, "
                "or give a folder below.")
    with st.expander("Generate a synthetic training set",
                     expanded=not have_sets):
        cols = st.columns(3)
        count = cols[0].number_input("Plates", 50, 200_000, 5000, step=500, key="gen_count")
        seed = cols[1].number_input("Seed", 0, 2**31 - 1, 1, key="gen_seed")
        styles = cols[2].multiselect("Styles", list(synth.STYLES), ["ccpd", "ccpd-green"], key="gen_styles")
        if st.button("Generate", key="gen_go", disabled=not styles):
            target = workspace.datasets_dir() / f"synth-train-{'+'.join(styles)}-{int(count)}-s{int(seed)}"
            bar = st.progress(0.0, text="Generating…")

            def report(done: int, total: int) -> None:
                bar.progress(done / max(total, 1), text=f"Generating {done:,} of {total:,}")

            synth.generate(target, int(count), int(seed), styles=styles, progress=report)
            marker = f"seed={int(seed)} count={int(count)} styles={','.join(styles)}\n"
            (target / ".complete").write_text(marker, encoding="utf-8")
            st.session_state["train_data"] = str(target)
            st.rerun()


def augment_options() -> dict[str, str]:
    """Augmentation choices: training default, none, the lab's current pipeline, saved pipelines, a path."""
    options = {"default": "Training default (seed notebook pipeline)", "none": "None",
               LAB: "Augmentation lab's current pipeline"}
    for path in sorted(workspace.pipelines_dir().glob("*.json")):
        options[str(path)] = f"Saved: {path.name}"
    options[loaders.OTHER] = "Other JSON file…"
    return options


def teacher_options() -> dict[str, str]:
    """Checkpoints that can teach: the sidebar's checkpoint choices that are PlateLens checkpoints."""
    return {path: label for path, label in choices.checkpoint_options().items()
            if path != choices.OTHER and path.endswith(".pt")}


def distill_ui() -> dict:
    """Teachers and their settings (README, Distillation); an empty dict when no teacher is picked."""
    with st.expander("Distillation"):
        options = teacher_options()
        teachers = st.multiselect(
            "Teachers", list(options), format_func=lambda path: options.get(path, path), key="train_teachers",
            help="checkpoints that read every training crop together and teach the model in training which "
                 "glyph each crop shows; each one reads every batch, so training slows down with each")
        cols = st.columns(2)
        temperature = cols[0].number_input("Temperature", 0.5, 20.0, 2.0, step=0.5, key="train_distill_t",
                                           disabled=not teachers,
                                           help="how much the teachers' distribution is softened")
        others = cols[1].checkbox("Teach every position", key="train_distill_others", disabled=not teachers,
                                  help="the first character (a plate's province glyph) every step, and one "
                                       "other position per step in turn, so letters and digits learn too")
    if not teachers:
        return {}
    return {"teachers": teachers, "distill_temperature": float(temperature),
            "distill_other_positions": bool(others)}


def form_ui() -> dict | None:
    """The training inputs; returns the options for ``launch_training`` when Start is pressed."""
    train_sources = source_options(include_embedded=False)
    generate_ui(have_sets=len(train_sources) > 1 or not list_runs(workspace.runs_dir()).empty)
    selection = loaders.current_selection()
    left, right = st.columns(2)
    with left:
        data = widgets.path_picker("Training data", train_sources, "train_data")
        val_options = {SPLIT: "Hold out 10% of the training data", **source_options(include_embedded=True)}
        val = widgets.path_picker("Validation data", val_options, "train_val")
        arch = st.selectbox("Architecture", list(ARCHITECTURES),
                            index=list(ARCHITECTURES).index(DEFAULT_ARCH), key="train_arch",
                            format_func=arch_label)
        init_options = {NONE: "None (train from scratch)"}
        if selection.checkpoint:
            init_options[selection.checkpoint] = f"Sidebar checkpoint ({Path(selection.checkpoint).name})"
        init_options[loaders.OTHER] = "Other checkpoint…"
        init = widgets.path_picker("Initialise from checkpoint (fine-tune)", init_options, "train_init",
                                   help="keeps the checkpoint's architecture and extends its vocabulary")
    with right:
        cols = st.columns(3)
        epochs = cols[0].number_input("Epochs", 1, 1000, 10, key="train_epochs")
        batch_size = cols[1].number_input("Batch size", 8, 4096, 128, step=32, key="train_batch")
        fine_tune = init not in (NONE, None)
        # One widget per mode, so choosing a checkpoint to fine-tune from brings up the lower default.
        lr = cols[2].number_input("Learning rate", 1e-5, 1.0, FINETUNE_LR if fine_tune else SCRATCH_LR,
                                  format="%.5f", step=1e-4, key="train_lr_finetune" if fine_tune else "train_lr",
                                  help="peak of the one-cycle schedule; fine-tunes default to a lower one")
        augment = widgets.path_picker("Augmentation", augment_options(), "train_augment")
        distill = distill_ui()
        with st.expander("Advanced"):
            cols = st.columns(4)
            workers = cols[0].number_input("DataLoader workers", 0, 16, 2, key="train_workers")
            device = cols[1].selectbox("Device", ["auto", "cpu", "cuda", "mps"], key="train_device")
            seed = cols[2].number_input("Seed", 0, 2**31 - 1, 0, key="train_seed")
            processes = cols[3].number_input("Processes", 1, 64, 1, key="train_processes",
                                             help="more than 1 starts the run under torchrun on this machine: "
                                                  "one process per GPU; the batch size is per process")
        name = st.text_input("Run name", key="train_name", placeholder="automatic: arch-date-time")
    if not st.button("Start training", type="primary", key="train_start"):
        return None
    if not data:
        st.error("Pick or enter the training data first.")
        return None
    if val is None:
        st.error("Enter the validation data path, or pick the 10% hold-out.")
        return None
    name = name.strip() or f"{arch}-{_dt.datetime.now():%Y%m%d-%H%M%S}"
    if not re.fullmatch(r"[\w.+-]+", name):
        st.error(f"run name {name!r} may only hold letters, digits and . _ + -")
        return None
    return {
        "data": data, "out": str(workspace.runs_dir() / name),
        "val": None if val == SPLIT else val, "val_split": 0.1 if val == SPLIT else None,
        "arch": arch, "epochs": int(epochs), "batch_size": int(batch_size), "lr": float(lr),
        "augment": augment, "init": init if fine_tune else None, "device": device,
        "seed": int(seed), "workers": int(workers), "processes": int(processes), **distill,
    }


def start(options: dict) -> None:
    """Check the inputs, write the lab pipeline if chosen, and launch the run."""
    out = Path(options["out"])
    try:
        if out.exists():
            raise InputError(f"run folder {out} already exists; choose another run name")
        for key, what in (("data", "training data"), ("val", "validation data")):
            if options.get(key):
                listing = list_source(confine(options[key], what))
                escaped = [path for path, why in confine_listing(listing).skipped if why == OUTSIDE_ROOTS]
                if escaped:
                    # The training process reads every listed file, so one escaping file refuses the run.
                    raise InputError(f"{what} {options[key]} lists {len(escaped)} file(s) {OUTSIDE_ROOTS}, "
                                     f"first {escaped[0]}; keep the images inside the roots")
        init = loaders.model(options["init"]) if options.get("init") else None
        if options.get("teachers"):
            input_size = init.input_size if init else ARCHITECTURES[options["arch"]].input.size
            for teacher in options["teachers"]:  # the labels' characters: checked by the run
                check_teacher(loaders.model(teacher), teacher, input_size, "")
        pick_device(options["device"])
        if options["augment"] == LAB:
            path = out / "augment.json"
            settings = st.session_state.get("aug_settings") or augment_spec.default_settings()
            save_pipeline(augment_spec.build_pipeline(settings), path)
            options["augment"] = str(path)
        elif options["augment"] not in ("default", "none") and not confine(options["augment"],
                                                                         "augmentation file").is_file():
            raise InputError(f"augmentation file {options['augment']} does not exist; "
                             "save one on the Augmentations page")
        # Refused here as well when another session claimed the same run name a moment ago.
        _processes().append(launch_training(options))
    except InputError as exc:
        st.error(str(exc))
        return
    st.session_state[RUN_KEY] = str(out)
    st.toast(f"Started {out.name}")


def curves(history: pd.DataFrame) -> go.Figure:
    """Loss, validation accuracy and validation CER per epoch, each on an axis of its own unit."""
    fig = make_subplots(rows=1, cols=3, subplot_titles=("Loss per label character", "Validation accuracy",
                                                        "Validation CER"))
    if not history.empty:
        x = history["epoch"]
        # Both losses are the mean negative log-likelihood per label character, so they share an axis.
        lines = [("train_loss", "train loss", 1), ("val_loss", "validation loss", 1),
                 ("val_accuracy", "validation accuracy", 2), ("val_cer", "validation CER", 3)]
        for column, name, col in lines:
            if column in history:
                fig.add_trace(go.Scatter(x=x, y=history[column], name=name, mode="lines+markers"), 1, col)
    # Fixed ranges: with one epoch, plotly would centre an accuracy of 0 on an axis from -1 to 1.
    fig.update_yaxes(rangemode="tozero", row=1, col=1)
    fig.update_yaxes(range=[0, 1.02], tickformat=".0%", row=1, col=2)
    fig.update_yaxes(rangemode="tozero", row=1, col=3)
    fig.update_xaxes(title="epoch", dtick=1 if len(history) < 15 else None)
    fig.update_layout(legend={"orientation": "h", "y": -0.25})
    widgets.style_figure(fig, 340)
    fig.update_layout(margin={"t": 40})  # room for the subplot titles
    return fig


# State colours as text: emoji render as empty boxes where no emoji font is installed.
STATE_COLOURS = {"running": "blue", "finished": "green", "stopped": "orange", "failed": "red"}


def monitor_ui() -> None:
    """The chosen run's status and live curves, the Stop button, and the table of runs (polled every 2 s)."""
    runs = list_runs(workspace.runs_dir())
    if runs.empty:
        widgets.empty_state("No training runs yet: start one above.")
        return
    any_running = bool((runs["state"] == "running").any())

    @st.fragment(run_every=2 if any_running else None)
    def live() -> None:
        for process in _processes():
            process.poll()
        table = list_runs(workspace.runs_dir())
        paths = table["path"].tolist()
        if st.session_state.get(RUN_KEY) not in paths:
            st.session_state[RUN_KEY] = paths[0]
        run_dir = Path(st.selectbox("Run", paths, key=RUN_KEY, format_func=lambda p: Path(p).name))
        state = run_state(run_dir)
        history = read_history(run_dir)
        options = table.set_index("path").loc[str(run_dir)]
        head = st.columns([3, 1])
        head[0].markdown(f"**{run_dir.name}** is **:{STATE_COLOURS.get(state, 'gray')}[{state}]**, "
                         f"epoch {options['epochs']} · {options['arch']} on `{options['data']}`")
        if state == "running":
            stop_key = f"train_stop_asked:{run_dir}"
            if stop_key not in st.session_state and head[1].button("Stop", key="train_stop"):
                if stop_run(run_dir):
                    st.session_state[stop_key] = time.monotonic()
            if stop_key in st.session_state:
                waited = time.monotonic() - st.session_state[stop_key]
                st.info(f"Stopping {run_dir.name} (asked {waited:.0f} s ago): it finishes its current batch, "
                        "saves last.pt and exits.")
            progress = progress_line(run_dir)
            if progress is not None:
                fraction, text = progress
                if text.startswith("Decoding") and fraction >= 1.0:
                    # The trainer writes its first batch count up to 2 s after decoding ends; until then the
                    # last decode count would read as if decoding were still going on.
                    done, _, total = str(options["epochs"]).partition("/")  # "epochs done/planned"
                    epoch = int(done) + 1 if done.isdigit() else 1
                    text = f"Images decoded; epoch {epoch} of {total or '?'} is under way"
                st.progress(fraction, text=text)
        if history.empty:
            st.caption("Waiting for the first epoch… (the run's log: "
                       f"`{run_dir / 'train.log'}`)" if state == "running" else "No epoch was recorded.")
        else:
            st.plotly_chart(curves(history), key="train_curves")
        if state == "failed":
            log = run_dir / "train.log"
            text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
            tail = text.splitlines()[-12:]
            st.error("The run failed. Last lines of its log:\n\n```\n" + "\n".join(tail) + "\n```")
        st.markdown("**All runs**")
        st.dataframe(table[["run", "state", "epochs", "best_val_accuracy", "best_val_cer", "arch", "data"]],
                     hide_index=True, key="train_runs_table",
                     column_config={
                         "best_val_accuracy": st.column_config.NumberColumn("best val acc", format="%.4f"),
                         "best_val_cer": st.column_config.NumberColumn("best val CER", format="%.4f"),
                     })
        now_running = bool((table["state"] == "running").any())
        if any_running and not now_running:
            # A run just ended: rerun the whole app so its best.pt shows up in the checkpoint picker.
            st.rerun(scope="app")

    live()


def main() -> None:
    """Draw the page."""
    options = form_ui()
    if options is not None:
        start(options)
    st.divider()
    st.subheader("Runs")
    monitor_ui()


main()
