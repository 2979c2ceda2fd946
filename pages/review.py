"""Review queue: the wrong readings most likely to be label errors first, one at a time, a button per decision."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from ocr_core.corrections import Correction, file_keys, review_queue, reviewed_paths

import loaders
import widgets

SKIP_KEY = "review_skipped"
# (action, button label, keyboard shortcut, help). "C" and "R" are reserved by streamlit.
BUTTONS = [
    ("keep", "Accept label", "A", "the label is right: the model misread it"),
    ("relabel", "Label is wrong", "W", "replace the label with the corrected text above"),
    ("invalid", "Not valid", "N", "a sign, a mirrored or unreadable crop: the sample drops out"),
    ("unsure", "Unsure", "U", "note it; nothing changes"),
]


def queue_of(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The review queue of a frame and the keys its decisions are stored under (cached per frame)."""
    queue = review_queue(frame)
    return queue, file_keys(queue["path"])


def skip(sample: int) -> None:
    """Button callback: pass over a sample for this session, without a decision."""
    st.session_state.setdefault(SKIP_KEY, []).append(sample)


def again() -> None:
    """Button callback: bring the skipped samples back into the queue."""
    st.session_state[SKIP_KEY] = []


def progress_ui(done: int, total: int, skipped: int) -> None:
    """How far the review is: k of n reviewed (and how many were skipped this session)."""
    note = f" · {skipped} skipped this session" if skipped else ""
    st.progress(done / total if total else 1.0, text=f"{done:,} of {total:,} reviewed{note}")


def sample_ui(path: Path, row: pd.Series, rank: int, total: int) -> None:
    """One candidate: its crop, label, reading, scores, the corrected text and a button per decision."""
    left, right = st.columns([3, 2])
    with left:
        st.image(loaders.display_crop(str(row["path"]), 560), width=560)
        # Predictions files of other systems may carry no image size.
        size = (f" · native size {int(row['width'])}×{int(row['height'])} px"
                if pd.notna(row.get("width")) and pd.notna(row.get("height")) else "")
        st.caption(f"`{Path(str(row['path'])).name}`{size}")
    with right:
        st.markdown(f"**Candidate {rank:,} of {total:,}** by label-issue score")
        st.markdown(widgets.diff_html(str(row["label"]), str(row["pred"])), unsafe_allow_html=True)
        issue = float(row["label_issue"])
        cells = st.columns(3)
        cells[0].metric("Label-issue score", "–" if pd.isna(issue) else f"{issue:.2f}",
                        help="loss of the label minus loss of the reading: how many nats more likely the model "
                             "finds its reading than the label (0: equally likely; high: the label looks wrong)")
        cells[1].metric("Confidence", "–" if pd.isna(row["confidence"]) else f"{float(row['confidence']):.3f}")
        cells[2].metric("CER", f"{float(row['cer']):.3f}")
        text_key = f"review:text:{int(row['sample'])}"
        if text_key not in st.session_state:
            st.session_state[text_key] = str(row["pred"])
        st.text_input("Corrected label (for “Label is wrong”)", key=text_key,
                      help="what the image shows; prefilled with the reading")
    with st.container(horizontal=True, gap="medium"):
        for action, label, shortcut, help_text in BUTTONS:
            st.button(label, key=f"review:{action}", shortcut=shortcut, help=help_text,
                      type="primary" if action == "relabel" else "secondary", on_click=widgets.decide,
                      args=(str(path), str(row["path"]), action, text_key if action == "relabel" else None))
        st.button("Skip", key="review:skip", shortcut="S", on_click=skip, args=(int(row["sample"]),),
                  help="decide later: back in the queue after a restart or “Review the skipped”")
    st.caption("Keys: A accept · W label is wrong · N not valid · U unsure · S skip (not while typing in the box).")


def decisions_ui(path: Path, known: dict[str, Correction], data: str) -> None:
    """The decisions so far, where they are kept, and how to export the corrected dataset."""
    with st.expander(f"Decisions so far ({len(known):,})"):
        if known:
            st.dataframe(pd.DataFrame([{"file": Path(c.file).name, "decision": widgets.DECISION_WORDS[c.action][0],
                                        "text": c.text} for c in known.values()]), hide_index=True)
        st.caption(f"Kept in `{path}` (one JSON line per decision; the last one about a file wins). Export the "
                   f"corrected dataset: `python -m ocr_core corrected-manifest {data} --corrections {path} "
                   "--out corrected.json`.")


def main() -> None:
    """Draw the page."""
    scored = loaders.scored_or_stop()
    path = widgets.corrections_file(scored)
    known, problem = widgets.decisions(path)
    if problem:
        st.error(f"{problem}. The review needs a readable corrections file.")
        st.stop()
    queue, keys = loaders.memo(scored.key, "review queue", lambda: queue_of(scored.frame))
    st.markdown("Every wrong reading, the most likely label errors first (highest label-issue score, then the "
                "most confident): decide each with a button or its key.")
    if queue.empty:
        widgets.empty_state("Nothing to review: the model reads every label of this dataset.")
        return
    reviewed = reviewed_paths(queue, known, keys)
    skipped = set(st.session_state.get(SKIP_KEY, []))
    progress_ui(sum(reviewed), len(queue), len(skipped))
    widgets.flash_ui()
    pending = [i for i, (done, sample) in enumerate(zip(reviewed, queue["sample"])) if not done
               and int(sample) not in skipped]
    if pending:
        sample_ui(path, queue.iloc[pending[0]], pending[0] + 1, len(queue))
    elif skipped:
        st.info(f"Every candidate has a decision except the {len(skipped):,} you skipped.")
        st.button("Review the skipped", key="review:again", on_click=again)
    else:
        st.success(f"All {len(queue):,} candidates are reviewed.")
    decisions_ui(path, known, scored.dataset.spec if scored.dataset is not None else "DATA")


main()
