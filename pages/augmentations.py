"""Augmentations: a live lab for the training pipeline, drawn from the declarative spec in augment_spec.

The lab's settings live in ``st.session_state["aug_settings"]``, so the Worst-predictions detail view and
the Train page use the pipeline built here.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from ocr_core import workspace
from ocr_core.analysis import rank_worst
from ocr_core.augment import (
    describe_replay, load_pipeline, pipeline_from_dict, pipeline_to_dict, save_pipeline,
)
from ocr_core.errors import InputError
from ocr_core.preprocess import preview as as_model_sees
from ocr_core.score import predict_images

import augment_spec
import loaders
import widgets

SETTINGS_KEY = "aug_settings"
MESSAGE_KEY = "aug_message"
MAX_SAMPLES = 8  # samples the lab augments at once
CHOOSABLE = 5000  # samples offered by "Choose samples": every one of a smaller frame, else the worst ranked


def apply_settings(settings: dict, message: str | None = None) -> None:
    """Make ``settings`` current and show them in the widgets (runs as a callback, before widgets exist)."""
    st.session_state[SETTINGS_KEY] = settings
    st.session_state.update(augment_spec.settings_to_widget_state(settings))
    st.session_state[MESSAGE_KEY] = message


def init_widget_state() -> None:
    """Give every lab widget its value from the current settings the first time it is drawn this session."""
    settings = st.session_state.setdefault(SETTINGS_KEY, augment_spec.default_settings())
    for key, value in augment_spec.settings_to_widget_state(settings).items():
        if key not in st.session_state:
            st.session_state[key] = value


# Spec widget kind -> how to draw it; every widget's value lives in session state under its key.
def _slider(param: augment_spec.Param, key: str, label: str) -> None:
    st.slider(label, min_value=param.low, max_value=param.high, step=param.step, key=key,
              help=param.help or None, persist_state="session")


def _int_slider(param: augment_spec.Param, key: str, label: str) -> None:
    st.slider(label, min_value=int(param.low), max_value=int(param.high), step=int(param.step or 1), key=key,
              help=param.help or None, persist_state="session")


WIDGETS = {
    "float": _slider,
    "float_range": _slider,
    "int": _int_slider,
    "int_range": _int_slider,
    "gray": _int_slider,
    "choice": lambda param, key, label: st.selectbox(label, param.options, key=key, persist_state="session"),
    "bool": lambda param, key, label: st.checkbox(label, key=key, persist_state="session"),
}


def controls_ui() -> dict:
    """A toggle, a probability and the parameter widgets of every transform in the spec; the settings."""
    init_widget_state()
    for spec in augment_spec.SPEC:
        enabled_key = augment_spec.widget_key(spec.name, "enabled")
        on = bool(st.session_state.get(enabled_key))
        p = st.session_state.get(augment_spec.widget_key(spec.name, "p"), spec.p)
        with st.expander(f"{spec.name} · p {p:.2f}" if on else f"{spec.name} (off)"):
            st.caption(spec.doc)
            st.toggle("enabled", key=enabled_key, persist_state="session")
            disabled = not st.session_state[enabled_key]
            st.slider("probability p", 0.0, 1.0, step=0.05, key=augment_spec.widget_key(spec.name, "p"),
                      disabled=disabled, persist_state="session")
            for param in spec.params:
                key = augment_spec.widget_key(spec.name, param.name)
                WIDGETS[param.kind](param, key, param.label or param.name)
    extra = st.session_state[SETTINGS_KEY].get("extra", [])
    settings = augment_spec.settings_from_widget_state(st.session_state, extra)
    st.session_state[SETTINGS_KEY] = settings
    return settings


def choosable(scored: loaders.Scored) -> dict[int, str]:
    """Sample id -> label of the samples "Choose samples" offers: all of them in frame order, or, in a frame
    of more than ``CHOOSABLE``, the ``CHOOSABLE`` worst (a million options would not fit in a widget)."""
    frame = scored.frame if len(scored.frame) <= CHOOSABLE else rank_worst(scored.frame).head(CHOOSABLE)
    return {int(i): str(t) for i, t in zip(frame["sample"], frame["label"])}


def samples_ui(scored: loaders.Scored) -> list[int]:
    """The samples to augment: the worst predictions by default, or any chosen sample."""
    source = st.segmented_control("Samples", ["worst", "chosen"], key="aug_source", default="worst",
                                  required=True,
                                  format_func={"worst": "Worst predictions", "chosen": "Choose samples"}.get)
    # Ranking sorts the whole frame, so it runs once per frame, not on every slider move.
    worst = loaders.memo(scored.key, f"worst {MAX_SAMPLES}",
                         lambda: rank_worst(scored.frame)["sample"].head(MAX_SAMPLES).astype(int).tolist())
    if source == "chosen":
        labels = loaders.memo(scored.key, f"choosable {CHOOSABLE}", lambda: choosable(scored))
        if len(labels) < len(scored.frame):
            st.caption(f"Offering the {len(labels):,} worst of the {len(scored.frame):,} samples.")
        chosen = st.multiselect("Samples", list(labels), default=worst[:2], key="aug_chosen",
                                format_func=lambda i: f"#{i} {labels[i]}", max_selections=MAX_SAMPLES)
        return [int(i) for i in chosen]
    count = st.slider("How many of the worst", 1, MAX_SAMPLES, 3, key="aug_worst_count")
    return worst[:count]


def draw_grid_ui(scored: loaders.Scored, pipeline, samples: list[int], draws: int, seed: int) -> None:
    """Each sample, then ``draws`` augmented versions with the parameters drawn and the model's reading."""
    frame = scored.frame
    frame = frame.loc[frame["sample"].isin(samples), ["sample", "label", "pred"]].set_index("sample")
    images, records = [], []
    for sample in samples:
        image = loaders.input_crop(scored.dataset, sample)
        # Seeded by the sample and the "New draws" count: reproducible, and each draw differs from the others.
        for result in augment_spec.distinct_draws(pipeline, image, draws, seed=seed * 1_000_003 + int(sample)):
            images.append(result["image"])
            records.append(augment_spec.format_draw(describe_replay(result["replay"])))
    if not images:
        return
    with torch.inference_mode():
        preds, confs = predict_images(scored.loaded, np.stack(images))
    broken = 0
    for row_index, sample in enumerate(samples):
        label, original = str(frame.at[sample, "label"]), str(frame.at[sample, "pred"])
        cells = st.columns(draws + 1)
        with cells[0]:
            st.image(loaders.upscale(as_model_sees(loaders.input_crop(scored.dataset, sample), scored.loaded.input), 256))
            st.markdown(f'<div style="font-size:0.8em;color:#6b7280;">original #{sample}</div>'
                        f"{widgets.reading_html(label, original)}", unsafe_allow_html=True)
        for draw in range(draws):
            i = row_index * draws + draw
            broken += preds[i] != label
            with cells[draw + 1]:
                st.image(loaders.upscale(as_model_sees(images[i], scored.loaded.input), 256))
                st.markdown(f"{widgets.reading_html(label, preds[i])} "
                            f'<span style="color:#6b7280;font-size:0.8em;">conf {confs[i]:.2f}</span>',
                            unsafe_allow_html=True)
                st.markdown(draw_html(records[i]), unsafe_allow_html=True)
    total = len(samples) * draws
    st.caption(f"The model misreads {broken} of {total} augmented draws (coloured); input size "
               f"{scored.loaded.input_size[1]}×{scored.loaded.input_size[0]} (smaller crops enlarged with "
               f"{scored.loaded.input.upscale} interpolation), shown at 2×.")


def draw_html(lines: list[str]) -> str:
    """The parameters of one draw, one small line per applied transform."""
    body = "<br>".join(html.escape(line) for line in lines) or "no transform applied"
    return f'<div style="font-size:0.72em;line-height:1.3;color:#6b7280;">{body}</div>'


def save_load_ui(pipeline, input_size: tuple[int, int]) -> None:
    """Save the pipeline as albumentations JSON (for the Train page and ``--augment``), or load one."""
    left, right = st.columns(2)
    with left:
        st.markdown("**Save** (albumentations JSON, accepted by the Train page and `--augment FILE.json`)")
        name = st.text_input("File name", "lab-pipeline.json", key="aug_save_name")
        buttons = st.container(horizontal=True)
        if buttons.button("Save to workspace", key="aug_save"):
            target = workspace.pipelines_dir() / (Path(name).stem + ".json")
            try:
                save_pipeline(pipeline, target)
            except InputError as exc:  # e.g. a folder of that name is in the way
                st.error(str(exc))
            else:
                st.success(f"Saved {target}")
        buttons.download_button("Download JSON", json.dumps(pipeline_to_dict(pipeline), indent=2,
                                                          ensure_ascii=False),
                              file_name=Path(name).stem + ".json", mime="application/json", on_click="ignore")
    with right:
        st.markdown("**Load**")
        saved = sorted(workspace.pipelines_dir().glob("*.json"))
        choice = st.selectbox("Saved pipelines", saved, format_func=lambda p: p.name, key="aug_load_choice",
                              index=None, placeholder="none saved yet" if not saved else "pick a file")
        upload = st.file_uploader("…or upload a JSON file", type=["json"], key="aug_upload")
        buttons = st.container(horizontal=True)
        buttons.button("Load", key="aug_load", on_click=load_callback,
                     args=(choice, upload, input_size), disabled=choice is None and upload is None)
        buttons.button("Reset to training default", key="aug_reset", on_click=apply_settings,
                     args=(augment_spec.default_settings(), "Reset to the training default pipeline."))


def load_callback(path: Path | None, upload, input_size: tuple[int, int]) -> None:
    """Read a pipeline file into the lab, checked on a crop of the model's input size; a bad file leaves the
    lab as it was and says why."""
    try:
        if upload is not None:
            try:
                data = json.loads(upload.getvalue().decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise InputError(
                    f"{upload.name} is not valid JSON ({exc}); upload an albumentations JSON file"
                ) from None
            pipeline, source = pipeline_from_dict(data, input_size), upload.name
        else:
            pipeline, source = load_pipeline(Path(path), input_size), Path(path).name
    except InputError as exc:
        st.session_state[MESSAGE_KEY] = ("error", str(exc))
        return
    settings, extras = augment_spec.settings_from_pipeline(pipeline)
    note = f"Loaded {source}."
    if extras:
        note += (f" Kept {len(extras)} transform(s) the lab has no controls for, after the others: "
                 f"{', '.join(extras)}.")
    apply_settings(settings, note)


def message_ui() -> None:
    """The outcome of the last load or reset."""
    message = st.session_state.pop(MESSAGE_KEY, None)
    if isinstance(message, tuple):
        st.error(message[1])
    elif message:
        st.success(message)


def main() -> None:
    """Draw the page."""
    scored = loaders.scored_or_stop()
    if loaders.needs_model(scored, "how the model reads augmented crops"):
        return
    message_ui()
    controls, preview = st.columns([1, 3], gap="large")
    with controls:
        st.markdown("**Transforms** (in pipeline order)")
        settings = controls_ui()
    pipeline = augment_spec.build_pipeline(settings)
    with preview:
        top = st.columns([3, 2, 1])
        with top[0]:
            samples = samples_ui(scored)
        draws = top[1].slider("Random draws per sample", 1, 6, 4, key="aug_draws")
        seed = int(st.session_state.setdefault("aug_seed", 0))
        if top[2].button("New draws", key="aug_reseed"):
            st.session_state["aug_seed"] = seed = seed + 1
        extra = settings.get("extra", [])
        if extra:
            st.info(f"{len(extra)} loaded transform(s) without lab controls run after the others.")
        if not pipeline.transforms:
            st.warning("Every transform is off: the draws equal the original.")
        draw_grid_ui(scored, pipeline, samples, draws, seed)
    st.divider()
    save_load_ui(pipeline, scored.loaded.input_size)
    with st.expander("Pipeline as albumentations JSON"):
        st.json(pipeline_to_dict(pipeline), expanded=False)


main()
