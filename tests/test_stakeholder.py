"""What a stakeholder sees (issue 19): first paint before heavy imports, offline icons, and the defects a new
user hit on Compare, uploads, Train, Worst predictions, the score cache and out-of-vocabulary data.

AppTest runs share the small stand-in workspace of tests/test_app_pages.py (its fixtures are imported).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import streamlit as st
import torch
from streamlit.testing.v1 import AppTest

from ocr_core import workspace
from ocr_core.atomic import write_json_atomic
from ocr_core.data import synth
from ocr_core.runs import OPTIONS_FILE, append_history, write_progress, write_status

from conftest import SHIPPED_DEMO
from test_app_pages import MAIN, OTHER, ROOT, assert_clean, env, open_page  # noqa: F401 - fixtures

APP_SOURCES = sorted([*(ROOT / "app").glob("*.py"), *(ROOT / "pages").glob("*.py")])


def _blocks(at: AppTest, kind: str) -> list:
    """Every block of the element tree whose proto is of ``kind`` (e.g. ``tab_container``)."""
    found, stack = [], [at._tree]
    while stack:
        node = stack.pop()
        proto = getattr(node, "proto", None)
        if proto is not None and hasattr(proto, "WhichOneof"):
            try:
                if proto.WhichOneof("type") == kind:
                    found.append(node)
            except ValueError:
                pass
        stack.extend(getattr(node, "children", {}).values())
    return found


def _values(array) -> list[float]:
    """A plotly JSON array: a list, or plotly's typed array ``{"dtype": ..., "bdata": base64}``."""
    if isinstance(array, dict):
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).astype(float).tolist()
    return [float(v) for v in array]


# ---- first paint ---------------------------------------------------------------------------------------

def test_the_sidebar_module_imports_nothing_heavy():
    """choices draws the sidebar before loaders is imported: it must not pull in torch, albumentations or plotly.express (streamlit itself imports plotly.graph_objects)."""
    code = ("import sys; sys.path.insert(0, 'app'); import choices; "
            "heavy = [m for m in ('torch', 'albumentations', 'plotly.express', 'torchmetrics') if m in sys.modules]; "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_sidebar_and_heading_are_drawn_before_the_model_code_loads(app, monkeypatch):
    """With ``loaders`` unimportable, the sidebar pickers and the page heading must still be on the page."""
    monkeypatch.setitem(sys.modules, "loaders", None)  # import loaders -> ImportError
    app.run()
    assert app.exception, "the run must fail once it needs the model code"
    assert app.sidebar.selectbox(key="checkpoint").value is not None
    assert app.sidebar.selectbox(key="dataset").value is not None
    assert [t.value for t in app.title][:1] == ["Overview"]


def test_no_material_icons_anywhere():
    """A ``:material/...:`` page icon makes the browser fetch the favicon from a font CDN (fails offline)."""
    offenders = [f"{p.name}:{i}" for p in APP_SOURCES
                 for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
                 if re.search(r"[\"']:material/", line)]
    assert not offenders, offenders


def test_no_emoji_icons_in_the_pages():
    """Emoji render as empty boxes where no emoji font is installed (headless Chromium here, many Linux desktops)."""
    emoji = re.compile("[\U0001F300-\U0001FAFF\u2705\u274C\u23F9\u2696\uFE0F]")  # not text glyphs like ✓
    offenders = [f"{p.name}:{i}" for p in APP_SOURCES if p.name != "main.py"  # main.py's favicon is an inline SVG
                 for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if emoji.search(line)]
    assert not offenders, offenders


def test_running_indicator_is_visible():
    """toolbarMode "minimal" hides streamlit's running indicator, so a slow first load looked like a blank page."""
    config = (ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8")
    assert re.search(r'^toolbarMode\s*=\s*"(viewer|auto|developer)"', config, re.M), config


# ---- Compare (defects 2 and 3) -------------------------------------------------------------------------

def test_compare_scores_nothing_until_b_is_chosen(app, env):
    at = open_page(app, "compare")
    assert at.selectbox(key="compare_b").value is None
    assert any("checkpoint B" in i.value for i in at.info)
    assert not at.metric, "no comparison before B is chosen"
    sidecars = [json.loads(p.read_text(encoding="utf-8")) for p in (env.workspace / "scores").glob("*.json")]
    assert all(meta["checkpoint"] == str(env.checkpoint) for meta in sidecars), "only A is scored"


def test_compare_opens_on_the_tab_with_samples_and_labels_deltas_in_points(app, env, monkeypatch):
    monkeypatch.setenv("PLATELENS_DATA_ROOTS", str(SHIPPED_DEMO.parent))
    at = open_page(app, "compare")
    # A: the real demo (reads most plates); B: the untrained stand-in (reads none): every change is "broken".
    at.sidebar.selectbox(key="checkpoint").set_value(OTHER).run()
    at.sidebar.text_input(key="checkpoint_path").set_value(str(SHIPPED_DEMO)).run()
    at.selectbox(key="compare_b").set_value(str(env.checkpoint)).run()
    assert_clean(at)
    labels = [t.label for t in at.tabs]
    assert labels[0] == "Fixed by B (0)" and labels[1].startswith("Broken by B (") and labels[1] != "Broken by B (0)"
    container = _blocks(at, "tab_container")
    assert len(container) == 1
    assert container[0].proto.tab_container.default_tab_index == 1, "opens on the broken samples"
    assert not any(i.proto.icon for i in at.info), "an empty tab is no success: no check icon"

    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    yaxis = chart["layout"]["yaxis"]
    assert yaxis.get("tickformat") != "+.0%", "a +0.34 pp delta read +0% on every tick"
    bars = [v for trace in chart["data"] for v in _values(trace["y"])]
    low, high = yaxis["range"]
    assert high - low >= 2.0 and max(abs(v) for v in bars) <= high, "percentage points, symmetric, ±1 at least"


# ---- uploads (defect 4) --------------------------------------------------------------------------------

def _upload(at: AppTest, name: str, data: bytes) -> list[str]:
    at.sidebar.get("file_uploader")[0].set_value((name, data, "application/octet-stream"))
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return [e.value for e in at.sidebar.error]


def test_a_seed000_upload_names_the_uploaded_file_in_the_command(app, env):
    notebook = env.root / "notebook.pt"
    torch.save({"model": {}, "alphabet": "0123456789", "target_length": 7}, notebook)
    app.run()
    errors = _upload(app, "my notebook.pt", notebook.read_bytes())
    assert len(errors) == 1, errors
    assert "import-seed000 'my notebook.pt' --out NEW.pt" in errors[0], errors[0]
    assert "import-seed000 it " not in errors[0]


def test_an_upload_over_the_limit_reaches_the_app_and_gets_a_sentence(app, env):
    """The browser refuses files over the widget's limit with an icon only: the widget's limit must be above
    the app's, so the app's check (a sentence that says what to do) is what a user meets."""
    app.run()
    uploader = app.sidebar.get("file_uploader")[0]
    app_limit_mb = workspace.max_upload_bytes() / 2**20
    assert uploader.proto.max_upload_size_mb >= 4 * app_limit_mb
    config = (ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8")
    server_cap = int(re.search(r"^maxUploadSize\s*=\s*(\d+)", config, re.M).group(1))
    assert server_cap >= uploader.proto.max_upload_size_mb, "the server would refuse what the widget lets through"
    errors = _upload(app, "big.pt", bytes(int((app_limit_mb + 1) * 2**20)))
    assert len(errors) == 1 and "over the" in errors[0] and "data root" in errors[0], errors
    assert any("data root" in c.value for c in app.sidebar.caption), "the way round the limit is always shown"


# ---- Train (defect 5) ----------------------------------------------------------------------------------

def _fake_run(name: str, state: str, history: list[dict], pid: int | None = None, epochs: int = 3) -> Path:
    run_dir = workspace.runs_dir() / name
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(run_dir / OPTIONS_FILE, {"data": "somewhere", "epochs": epochs, "arch": "small"})
    for row in history:
        append_history(run_dir / "history.jsonl", row)
    write_status(run_dir, state, pid=pid) if pid is not None else write_status(run_dir, state)
    return run_dir


def test_train_curves_have_honest_axes_and_the_banner_goes_once_a_run_exists(app, env):
    run_dir = _fake_run("one-epoch", "finished", [{"epoch": 1, "train_loss": 3.2, "val_loss": 2.9,
                                                  "val_accuracy": 0.0, "val_cer": 0.9}])
    try:
        at = open_page(app, "train")
        at.selectbox(key="train_run").set_value(str(run_dir)).run()
        assert_clean(at)
        assert not any("no training set yet" in i.value for i in at.info), "a run exists: the banner is stale"
        chart = json.loads(at.get("plotly_chart")[0].proto.spec)
        layout = chart["layout"]
        assert layout["yaxis2"]["range"] == [0, 1.02], "accuracy on 0..1, not -1..1 around one point"
        names = [trace["name"] for trace in chart["data"]]
        assert not any("per plate" in n for n in names), names
        titles = [a["text"] for a in layout["annotations"]]
        assert any("per label character" in t for t in titles), titles
    finally:
        shutil.rmtree(run_dir)


def test_train_progress_does_not_read_as_decoding_once_decoding_is_done(app, env):
    run_dir = _fake_run("decoded", "running", [], pid=os.getpid())
    write_progress(run_dir, "decode", 300, 300)
    try:
        at = open_page(app, "train")
        at.selectbox(key="train_run").set_value(str(run_dir)).run()
        assert_clean(at)
        texts = [bar.proto.text for bar in at.get("progress")]
        assert texts == ["Images decoded; epoch 1 of 3 is under way"], texts
    finally:
        shutil.rmtree(run_dir)


def test_stop_shows_that_the_run_is_stopping_at_once(app, env):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])  # stands in for a trainer
    run_dir = _fake_run("to-stop", "running", [], pid=sleeper.pid)
    try:
        at = open_page(app, "train")
        at.selectbox(key="train_run").set_value(str(run_dir)).run()
        at.button(key="train_stop").click().run()
        assert not at.exception
        assert any(i.value.startswith("Stopping to-stop") for i in at.info), [i.value for i in at.info]
        assert sleeper.wait(timeout=20) != 0, "the stand-in trainer got SIGTERM"
    finally:
        sleeper.kill()
        shutil.rmtree(run_dir)


def test_train_log_has_no_best_accuracy_for_a_run_stopped_before_its_first_epoch(monkeypatch, capsys, tmp_path):
    import ocr_core.train
    from ocr_core import cli

    monkeypatch.setattr(ocr_core.train, "train", lambda opts, resume=None: {"stopped": True, "best_accuracy": -1.0})
    assert cli.main(["train", "--resume", str(tmp_path)]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert "-1.0000" not in line and line.startswith("stopped: best val_accuracy=none"), line


# ---- Worst predictions: Inspect opens the detail where the eye is (defect 6), distinct draws (defect 8) --

def test_inspect_opens_the_detail_in_a_dialog_with_distinct_draws(app, env):
    at = open_page(app, "worst")
    assert not _blocks(at, "dialog"), "no dialog before Inspect"
    inspect = [b for b in at.button if b.key and b.key.startswith("worst:inspect:")]
    target = int(inspect[5].key.rsplit(":", 1)[1])
    inspect[5].click().run()
    assert_clean(at)
    dialogs = _blocks(at, "dialog")
    assert len(dialogs) == 1, "Inspect opens the detail as a dialog over the gallery"
    dialog = dialogs[0]
    assert dialog.selectbox(key="worst_detail").value == target
    at.run()  # any other interaction closes it
    assert not _blocks(at, "dialog")

    # Samples 0 and 2 drew "no transform applied" twice among four when draws were only seeded by the id.
    for sample in (0, 2):
        at.session_state["worst_detail"], at.session_state["worst_detail_open"] = sample, True
        at.run()
        assert_clean(at)
        (dialog,) = _blocks(at, "dialog")
        urls = [img.url for element in dialog.get("image") for img in element.proto.imgs]
        draws = urls[1:]  # the large crop, then the augmented draws
        assert len(draws) == 4 and len(set(draws)) == 4, f"sample {sample}: four different augmented draws"


@pytest.mark.parametrize("seed", [0, 2, 3, 5])
def test_augmented_draws_differ_from_each_other_and_repeat_for_a_seed(seed):
    """Seeds 0, 2, 3 and 5 gave the default pipeline's "no transform applied" draw twice or more in four."""
    sys.path.insert(0, str(ROOT / "app"))
    import augment_spec

    pipeline = augment_spec.build_pipeline(augment_spec.default_settings())
    image = np.random.default_rng(0).integers(0, 255, (32, 128, 3), dtype=np.uint8)
    draws = [r["image"] for r in augment_spec.distinct_draws(pipeline, image, 4, seed=seed)]
    digests = {d.tobytes() for d in draws} | {image.tobytes()}
    assert len(digests) == 5, "four draws, none equal to another or to the original"
    again = [r["image"] for r in augment_spec.distinct_draws(pipeline, image, 4, seed=seed)]
    assert all(np.array_equal(a, b) for a, b in zip(draws, again)), "reproducible"


# ---- the score cache is keyed by the files, not the path string (defect 11) ----------------------------

def test_one_folder_through_a_symlink_is_scored_once(app, env):
    real = workspace.datasets_dir() / "linked-real"
    if not real.exists():
        synth.generate(real, 24, seed=3, styles=("ccpd",))
    link = env.workspace / "linked-alias"
    if not link.exists():
        link.symlink_to(real, target_is_directory=True)
    scores = env.workspace / "scores"
    at = open_page(app, "overview")
    at.sidebar.selectbox(key="dataset").set_value(OTHER).run()
    at.sidebar.text_input(key="dataset_path").set_value(str(real)).run()
    assert_clean(at)
    before = set(scores.glob("*.parquet"))
    st.cache_data.clear()
    st.cache_resource.clear()  # as after a restart: the decoded dataset is not shared with the next path
    at.sidebar.text_input(key="dataset_path").set_value(str(link)).run()
    assert_clean(at)
    assert set(scores.glob("*.parquet")) == before, "the same folder through a symlink is scored again"
    assert {m.label: m.value for m in at.metric}["Samples"] == "24"


def test_a_cached_frame_carries_the_paths_of_the_dataset_it_was_asked_for(tmp_path):
    """Compare joins A and B by path, so a frame cached under the real path must show the link's paths."""
    sys.path.insert(0, str(ROOT / "app"))
    import loaders
    from ocr_core.data.dataset import decode_listing
    from ocr_core.data.sources import list_source
    from ocr_core.score import score_cache_key

    real = tmp_path / "real"
    synth.generate(real, 6, seed=4, styles=("ccpd",))
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    via_real, via_link = (decode_listing(list_source(p), (32, 128)) for p in (real, tmp_path / "link"))
    frame = pd.DataFrame({"sample": range(6), "path": [s.path for s in via_real.samples]})
    assert loaders._own_paths(frame, via_link)["path"].tolist() == [s.path for s in via_link.samples]
    checkpoint = SHIPPED_DEMO
    assert score_cache_key(checkpoint, via_real) == score_cache_key(checkpoint, via_link)


# ---- labels the checkpoint cannot spell (defect 12) ----------------------------------------------------

def test_a_dataset_outside_the_vocabulary_gets_a_banner_that_says_why_and_what_to_do(app, env):
    russian = workspace.datasets_dir() / "ru-plates"
    if not russian.exists():
        synth.generate(russian, 16, seed=2, styles=("ru",))
    at = open_page(app, "overview")
    at.sidebar.selectbox(key="dataset").set_value(OTHER).run()
    at.sidebar.text_input(key="dataset_path").set_value(str(russian)).run()
    assert not at.exception
    banners = [w.value for w in at.warning if "cannot read" in w.value]
    assert len(banners) == 1, [w.value for w in at.warning]
    # Russian plates use the Latin O, which Chinese plates (and the stand-in's vocabulary) never have.
    assert re.match(r"[1-9]\d* of 16 labels hold characters this checkpoint cannot read \(O\)", banners[0]), banners
    assert "fine-tune" in banners[0] and "Train page" in banners[0]


# ---- Overview defaults: the telling slice first, readable bins and labels, provinces worst first ---------

def test_readable_bins_and_the_telling_slice():
    from ocr_core.analysis import readable_bins, telling_slices

    heights = pd.Series([24, 25, 27, 31, 40, 44, 52, 60])
    labels = readable_bins(heights, 4)
    assert labels.tolist()[0] == "24–33" and not any("(" in t or "]" in t for t in labels), labels.tolist()
    frame = pd.DataFrame({"correct": [False] * 10 + [True] * 30, "cer": 0.0, "source": ["folder"] * 40,
                          "width": [20 + i % 7 for i in range(40)], "height": list(range(10, 50))})
    assert telling_slices(frame, ["source", "width", "height"], bins=4)[0] == "height"


def test_overview_opens_on_the_telling_slice_with_upright_labels_and_provinces_worst_first(app, env, monkeypatch):
    monkeypatch.setenv("PLATELENS_DATA_ROOTS", str(SHIPPED_DEMO.parent))
    mixed = workspace.datasets_dir() / "mixed-sizes"
    if not mixed.exists():
        synth.generate(mixed, 30, seed=6, styles=("ccpd", "ccpd-green"))
        for path in sorted(mixed.glob("*.png"))[:15]:  # half of them shrunk to 12 px high: hard to read
            image = cv2.imdecode(np.fromfile(str(path), np.uint8), cv2.IMREAD_COLOR)
            small = cv2.resize(image, (36, 12), interpolation=cv2.INTER_AREA)
            cv2.imencode(".png", small)[1].tofile(str(path))
    at = open_page(app, "overview")
    at.sidebar.selectbox(key="checkpoint").set_value(OTHER).run()
    at.sidebar.text_input(key="checkpoint_path").set_value(str(SHIPPED_DEMO)).run()
    at.sidebar.selectbox(key="dataset").set_value(OTHER).run()
    at.sidebar.text_input(key="dataset_path").set_value(str(mixed)).run()
    assert_clean(at)
    (picker,) = [s for s in at.selectbox if s.label == "Slice accuracy by"]
    assert picker.value in ("height", "width"), f"the size separates read from misread plates, not {picker.value}"
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    by_title = {c["layout"]["title"]["text"]: c for c in charts if c["layout"].get("title")}
    sliced = by_title[f"Accuracy by {picker.value}"]
    assert not any("(" in str(x) or "]" in str(x) for x in sliced["data"][0]["x"]), sliced["data"][0]["x"]
    for chart in charts:
        for trace in chart["data"]:
            if trace.get("type") == "bar" and trace.get("texttemplate"):
                assert trace.get("textangle") == 0, chart["layout"]["title"]["text"]
    provinces = next(c for t, c in by_title.items() if t.startswith("Accuracy by first character"))
    accuracy = _values(provinces["data"][0]["y"])
    assert accuracy == sorted(accuracy), "provinces worst first"


def test_compare_opens_the_demo_on_its_shipped_baseline(app, env):
    """The demo story: with a baseline beside the demo, Compare opens on demo (A) against baseline (B)."""
    baseline = env.checkpoint.parent / "baseline.pt"
    shutil.copyfile(SHIPPED_DEMO, baseline)
    try:
        at = open_page(app, "compare")
        assert at.selectbox(key="compare_b").value == str(baseline)
        assert_clean(at)
        assert [m.label for m in at.metric] == ["Accuracy A", "Accuracy B", "CER A", "CER B"]
        at.sidebar.selectbox(key="checkpoint").set_value(str(baseline)).run()
        assert at.selectbox(key="compare_b").value is None, "other checkpoints still wait for a choice of B"
    finally:
        baseline.unlink()
