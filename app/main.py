"""PlateLens dashboard entry point: ``streamlit run app/main.py``.

The sidebar lives here, not in a page, so the checkpoint and dataset picked on one page stay picked
on the others; ``st.navigation`` then runs the chosen page from ``pages/``.

First paint comes before anything heavy: the sidebar and the page's heading are drawn from light modules
(``choices``: no torch, albumentations or plotly), and only then is ``loaders`` imported (torch and the
model code, several seconds on a fresh server), under a visible note. Model loading, decoding and scoring
happen later still, inside the page, each with its own spinner or progress bar.
"""

from __future__ import annotations

import importlib
import shlex
import sys
from types import ModuleType

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

import choices

# (page file, navigation title, heading). No page icons: material-symbol icons are a web font (as the page
# icon, the favicon is fetched from a font CDN, which fails offline), and emoji are boxes where no emoji
# font is installed.
PAGES = [
    ("../pages/overview.py", "Overview", "Overview"),
    ("../pages/worst.py", "Worst predictions", "Worst predictions"),
    ("../pages/review.py", "Review labels", "Label review queue"),
    ("../pages/confusions.py", "Confusions", "Confusions"),
    ("../pages/slices.py", "Worst slices", "Worst slices"),
    ("../pages/error_map.py", "Error map", "Error map"),
    ("../pages/augmentations.py", "Augmentations", "Augmentation lab"),
    ("../pages/train.py", "Train", "Train"),
    ("../pages/compare.py", "Compare", "Compare checkpoints"),
    ("../pages/robustness.py", "Robustness", "Robustness curves"),
]
APP_ICON = "🚗"  # the favicon: an emoji becomes an inline SVG (a data: URL), nothing is fetched
# The browser refuses larger files before the app sees them; keep it equal to server.maxUploadSize in
# .streamlit/config.toml. Files between the app's own limit and this one reach the app, which says why
# it refuses them in a sentence.
UPLOAD_HARD_CAP_MB = 200


def engine() -> ModuleType:
    """``loaders`` (torch, albumentations, the model code), imported after the first paint.

    Only the first page load after a server start pays for the import; it shows a note while it runs.
    """
    module = sys.modules.get("loaders")
    if module is not None and not getattr(module.__spec__, "_initializing", False):
        return module
    # import_module, not sys.modules: a rerun that starts while another session's run is still importing
    # must wait for the import to finish instead of taking the half-initialised module.
    with st.spinner("Starting PlateLens: loading torch and the model code (first page load after a start)…"):
        return importlib.import_module("loaders")


def _upload_message(name: str, message: str) -> str:
    # The checker names the upload "it" where a command needs a file name; the user has the file under
    # the name they uploaded.
    return message.replace("import-seed000 it ", f"import-seed000 {shlex.quote(name)} ")


def _take_upload() -> None:
    # A callback runs before the script, so it may still set the checkpoint picker's value.
    upload = st.session_state.get("checkpoint_upload")
    if upload is None:
        return
    from ocr_core.errors import InputError

    try:
        path = engine().store_upload(upload.name, upload.getvalue())
    except InputError as exc:
        st.session_state["upload_error"] = _upload_message(upload.name, str(exc))
        return
    st.session_state["checkpoint"] = str(path)


def upload_ui() -> None:
    """A checkpoint upload, checked (size, weights-only load) before it is offered in the picker."""
    with st.sidebar.expander("Upload a checkpoint"):
        limit_mb = choices.upload_limit_mb()
        st.file_uploader(f"PlateLens .pt file (up to {limit_mb:g} MB)", type=["pt", "pth"],
                         key="checkpoint_upload", on_change=_take_upload,
                         max_upload_size=UPLOAD_HARD_CAP_MB)
        st.caption(f"Larger than {limit_mb:g} MB? Copy it into a data root and choose "
                   "“Other checkpoint, ONNX model or predictions file…” above.")
        message = st.session_state.pop("upload_error", None)
        if message:
            st.error(message)


def _switch_domain() -> None:
    # A callback runs before the script, so it may still set the pickers' values.
    checkpoint, dataset = choices.domain_defaults(st.session_state.get("domain") or "plates")
    st.session_state["checkpoint"], st.session_state["dataset"] = checkpoint, dataset


def domain_ui() -> None:
    """Plates or captchas: one click opens that domain's shipped demo on its embedded test set."""
    available = choices.domains()
    if len(available) > 1:
        st.sidebar.segmented_control("Domain", available, format_func=choices.DOMAINS.get, key="domain",
                                     default="plates", required=True, on_change=_switch_domain)


def sidebar_ui() -> tuple[choices.Selection, DeltaGenerator]:
    """Domain, checkpoint and dataset pickers, and a slot for the device (filled once torch is imported)."""
    st.sidebar.title("PlateLens")
    domain_ui()
    checkpoint = choices.path_picker("Checkpoint", choices.checkpoint_options(), "checkpoint",
                                     placeholder="best.pt, model.onnx, or another system's predictions.csv",
                                     where=st.sidebar)
    upload_ui()
    dataset = choices.path_picker("Dataset", choices.dataset_options(), "dataset",
                                  placeholder="folder, .json or .csv manifest", where=st.sidebar)
    tta = st.sidebar.toggle("Test-time augmentation", key="tta",
                            help="Read every crop five times, moved up to 2% of its width left and right (1-2 px "
                                 "on a plate), and keep the reading the five views find most probable: fewer "
                                 "errors that hinge on where the crop box sits, at five times the scoring time "
                                 "(README, Test-time augmentation).")
    device = st.sidebar.empty()
    device.caption("Device: …")
    return choices.Selection(checkpoint, dataset, tta), device


def main() -> None:
    """Configure the page, draw the sidebar and the page's heading, then run the selected page."""
    st.set_page_config(page_title="PlateLens", page_icon=APP_ICON, layout="wide")
    pages = [st.Page(path, title=title, default=i == 0) for i, (path, title, _) in enumerate(PAGES)]
    navigation = st.navigation(pages)
    st.session_state["selection"], device = sidebar_ui()
    headings = {title: heading for _, title, heading in PAGES}
    st.title(headings.get(navigation.title, navigation.title))
    loaders = engine()
    device.caption(f"Device: {loaders.device_name()}")
    navigation.run()


main()
