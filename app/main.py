"""PlateLens dashboard entry point: ``streamlit run app/main.py``.

The sidebar lives here, not in a page, so the checkpoint and dataset picked on one page stay picked
on the others; ``st.navigation`` then runs the chosen page from ``pages/``.
"""

from __future__ import annotations

import streamlit as st

from ocr_core.errors import InputError

import loaders
import widgets

PAGES = [
    ("../pages/overview.py", "Overview", ":material/dashboard:"),
    ("../pages/worst.py", "Worst predictions", ":material/report:"),
    ("../pages/confusions.py", "Confusions", ":material/grid_on:"),
    ("../pages/augmentations.py", "Augmentations", ":material/tune:"),
    ("../pages/train.py", "Train", ":material/model_training:"),
    ("../pages/compare.py", "Compare", ":material/compare_arrows:"),
]


def _take_upload() -> None:
    # A callback runs before the script, so it may still set the checkpoint picker's value.
    upload = st.session_state.get("checkpoint_upload")
    if upload is None:
        return
    try:
        path = loaders.store_upload(upload.name, upload.getvalue())
    except InputError as exc:
        st.session_state["upload_error"] = str(exc)
        return
    st.session_state["checkpoint"] = str(path)


def upload_ui() -> None:
    """A checkpoint upload, checked (size, weights-only load) before it is offered in the picker."""
    with st.sidebar.expander("Upload a checkpoint"):
        limit_mb = loaders.upload_limit_mb()
        st.file_uploader(f"PlateLens .pt file (up to {limit_mb:g} MB)", type=["pt", "pth"],
                         key="checkpoint_upload", on_change=_take_upload)
        message = st.session_state.pop("upload_error", None)
        if message:
            st.error(message)


def sidebar_ui() -> loaders.Selection:
    """Checkpoint and dataset pickers and the device in use."""
    st.sidebar.title("PlateLens")
    checkpoint = widgets.path_picker("Checkpoint", loaders.checkpoint_options(), "checkpoint",
                                     placeholder="/path/to/best.pt", where=st.sidebar)
    upload_ui()
    dataset = widgets.path_picker("Dataset", loaders.dataset_options(), "dataset",
                                  placeholder="folder, .json or .csv manifest", where=st.sidebar)
    st.sidebar.caption(f"Device: {loaders.device_name()}")
    return loaders.Selection(checkpoint, dataset)


def main() -> None:
    """Configure the page, draw the global sidebar and run the selected page."""
    st.set_page_config(page_title="PlateLens", page_icon=":material/directions_car:", layout="wide")
    pages = [st.Page(path, title=title, icon=icon, default=i == 0)
             for i, (path, title, icon) in enumerate(PAGES)]
    navigation = st.navigation(pages)
    st.session_state["selection"] = sidebar_ui()
    navigation.run()


main()
