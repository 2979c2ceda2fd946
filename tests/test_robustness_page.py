"""The Robustness page: it starts background runs of ``python -m ocr_core robustness``, shows their
progress, draws the curves of two checkpoints once they are kept, and finds them kept on the next visit."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from streamlit.testing.v1 import AppTest

from ocr_core import workspace
from ocr_core.checkpoint import make_checkpoint, save_checkpoint
from ocr_core.data import synth
from ocr_core.errors import InputError
from ocr_core.models import arch_config, build_model
from ocr_core.robustness import CORRUPTIONS, Settings, job_state, launch
from ocr_core.runs import write_status
from ocr_core.vocab import Vocab

ROOT = Path(__file__).resolve().parents[1]
MAIN = str(ROOT / "app" / "main.py")
OTHER = "__other__"


def stand_in(path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    vocab = Vocab(synth.style_charset("ccpd"))
    config = arch_config("small")
    save_checkpoint(make_checkpoint(build_model("small", vocab.num_classes, config), "small", config, vocab,
                                    (32, 128)), path)
    return path


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("robust")
    ws = root / "workspace"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PLATELENS_WORKSPACE", str(ws))  # the background process inherits it
        mp.setattr(workspace, "EMBEDDED_COUNT", 24)
        mp.setattr(workspace, "DEMO_CHECKPOINT", stand_in(root / "demo.pt", 0))
        yield SimpleNamespace(root=root, ws=ws, a=workspace.DEMO_CHECKPOINT, b=stand_in(ws / "other.pt", 1))



def clean(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def open_robustness(at: AppTest, b: Path | None) -> AppTest:
    at.run()
    at.switch_page("../pages/robustness.py").run()
    clean(at)
    at.number_input(key="robustness_limit").set_value(10)
    at.selectbox(key="robustness_levels").set_value(3).run()
    if b is not None:
        at.selectbox(key="robustness_b").set_value(OTHER).run()
        at.text_input(key="robustness_b_path").set_value(str(b)).run()
    clean(at)
    return at


def traces(at: AppTest) -> list[str]:
    (chart,) = at.get("plotly_chart")
    return [trace.get("name", "") for trace in json.loads(chart.proto.spec)["data"]]


def test_page_starts_two_background_runs_shows_progress_then_both_curves(app, env):
    at = open_robustness(app, env.b)
    assert not at.get("plotly_chart")
    at.button(key="robustness_start").click().run()
    clean(at)
    folders = sorted(p for p in (env.ws / "robustness").iterdir() if p.is_dir())
    assert len(folders) == 2, "one background run per checkpoint"
    bars = at.get("progress")
    assert bars and all("A · demo.pt" in b.proto.text or "B · other.pt" in b.proto.text for b in bars), \
        [b.proto.text for b in bars]
    deadline = time.monotonic() + 240
    while any(job_state(f) == "running" for f in folders) and time.monotonic() < deadline:
        time.sleep(2)
        at.run()  # AppTest does not run fragments on their timer: rerun to poll, as the browser would
        assert not at.exception
    logs = [(f / "robustness.log").read_text(encoding="utf-8", errors="replace")[-1500:] for f in folders]
    assert all(job_state(f) == "finished" for f in folders), logs
    at.run()
    clean(at)
    names = traces(at)
    assert len(names) == 2 * len(CORRUPTIONS), names
    assert {n.split(" · ", 1)[1] for n in names} == {"A · demo.pt", "B · other.pt"}
    assert not at.get("progress")

    # Kept: a fresh session draws them at once, without a button and without a new process.
    again = open_robustness(AppTest.from_file(MAIN, default_timeout=120), env.b)
    assert len(traces(again)) == 2 * len(CORRUPTIONS)
    assert not [b for b in again.button if b.key == "robustness_start"]
    assert len([p for p in (env.ws / "robustness").iterdir() if p.is_dir()]) == 2

    # Other settings are another result: the button comes back.
    again.number_input(key="robustness_limit").set_value(12).run()
    assert [b for b in again.button if b.key == "robustness_start"]
    assert not again.get("plotly_chart")


def test_the_second_checkpoint_defaults_to_compares_b(app, env):
    at = app.run()
    at.switch_page("../pages/compare.py").run()
    at.selectbox(key="compare_b").set_value(OTHER).run()
    at.text_input(key="compare_b_path").set_value(str(env.b)).run()
    clean(at)
    at.switch_page("../pages/robustness.py").run()
    clean(at)
    assert at.selectbox(key="robustness_b").value == str(env.b)
    assert "Compare's checkpoint B" in at.selectbox(key="robustness_b").format_func(str(env.b))


def test_a_dead_run_reads_as_failed_with_its_log_and_can_be_started_again(app, env, tmp_path):
    folder = tmp_path / "job"
    folder.mkdir()
    (folder / "robustness.log").write_text("Traceback ...\nMemoryError\n", encoding="utf-8")
    write_status(folder, "running", pid=2**22 + 12345)  # no such process
    assert job_state(folder) == "failed"
    write_status(folder, "running", pid=os.getpid())
    assert job_state(folder) == "running"
    with pytest.raises(InputError, match="being computed already"):
        launch(env.a, env.root, folder, Settings(10, (0.0, 1.0)))
