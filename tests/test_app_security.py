"""Dashboard security: path inputs confined to the data roots, checked checkpoint uploads."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import streamlit as st
import torch
from conftest import TINY_VOCAB, TouchOnUnpickle, make_images
from streamlit.testing.v1 import AppTest

from ocr_core.checkpoint import make_checkpoint, save_checkpoint
from ocr_core.models import arch_config, build_model
from ocr_core.roots import OUTSIDE_ROOTS, ROOTS_ENV
from ocr_core.vocab import Vocab

ROOT = Path(__file__).resolve().parents[1]
MAIN = str(ROOT / "app" / "main.py")
OTHER = "__other__"


@pytest.fixture
def site(tmp_path, monkeypatch):
    """An allowed root with plates and a checkpoint, a secret folder beside it, and a fresh AppTest."""
    allowed, secret = tmp_path / "allowed", tmp_path / "secret"
    make_images(allowed / "plates", ["皖A12345", "沪B67890"], naming="id")
    make_images(secret, ["皖C11111"], naming="id")
    torch.manual_seed(0)
    vocab = Vocab(TINY_VOCAB)
    model = build_model("small", vocab.num_classes, arch_config("small"))
    checkpoint = allowed / "model.pt"
    save_checkpoint(make_checkpoint(model, "small", arch_config("small"), vocab, (32, 128)), checkpoint)
    (secret / "model.pt").write_bytes(checkpoint.read_bytes())
    monkeypatch.setenv("PLATELENS_WORKSPACE", str(tmp_path / "workspace"))
    monkeypatch.setenv(ROOTS_ENV, str(allowed))
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(MAIN, default_timeout=120)
    # Choose the paths before the first run, so the embedded test set is never generated here.
    at.session_state["checkpoint"] = OTHER
    at.session_state["checkpoint_path"] = str(checkpoint)
    at.session_state["dataset"] = OTHER
    at.session_state["dataset_path"] = str(allowed / "plates")
    yield SimpleNamespace(at=at, allowed=allowed, secret=secret, checkpoint=checkpoint, root=tmp_path)
    st.cache_data.clear()
    st.cache_resource.clear()


def _only_error(at: AppTest) -> str:
    assert not at.exception, [e.message for e in at.exception]
    errors = [e.value for e in at.error]
    assert len(errors) == 1, errors
    return errors[0]


def test_inside_the_roots_works(site):
    site.at.run()
    assert not site.at.exception and not site.at.error
    assert {m.label: m.value for m in site.at.metric}["Samples"] == "2"


@pytest.mark.parametrize("key,path", [
    ("dataset_path", "{secret}"),
    ("dataset_path", "{allowed}/plates/../../secret"),
    ("dataset_path", "{allowed}/escape"),  # a symlink inside the root that leads out
    ("checkpoint_path", "{secret}/model.pt"),
    ("checkpoint_path", "/etc/passwd"),
])
def test_paths_outside_the_roots_are_refused(site, key, path):
    (site.allowed / "escape").symlink_to(site.secret, target_is_directory=True)
    site.at.session_state[key] = path.format(secret=site.secret, allowed=site.allowed)
    site.at.run()
    assert OUTSIDE_ROOTS in _only_error(site.at)


def test_a_manifest_cannot_reach_outside_the_roots(site):
    outside = next(site.secret.glob("*.png"))
    manifest = site.allowed / "m.csv"
    manifest.write_text(f"file,text\nplates/{next((site.allowed / 'plates').glob('*.png')).name},皖A12345\n"
                        f"../secret/{outside.name},皖C11111\n", encoding="utf-8")
    site.at.session_state["dataset_path"] = str(manifest)
    site.at.run()
    assert not site.at.error
    warnings = [w.value for w in site.at.warning]
    assert any("skipped 1 file(s)" in w and OUTSIDE_ROOTS in w for w in warnings), warnings
    assert {m.label: m.value for m in site.at.metric}["Samples"] == "1"


def test_train_page_refuses_data_outside_the_roots(site):
    at = site.at
    at.run()
    at.switch_page("../pages/train.py").run()
    at.selectbox(key="train_data").set_value(OTHER).run()
    at.text_input(key="train_data_path").set_value(str(site.secret)).run()
    at.button(key="train_start").click().run()
    assert OUTSIDE_ROOTS in _only_error(at)
    assert not (site.root / "workspace" / "runs").exists() or not any((site.root / "workspace" / "runs").iterdir())


def _upload(at: AppTest, name: str, data: bytes) -> None:
    at.sidebar.get("file_uploader")[0].set_value((name, data, "application/octet-stream"))
    at.run()


def test_uploaded_checkpoint_is_checked_kept_and_selected(site):
    site.at.session_state["checkpoint"] = str(site.checkpoint)  # the path picker is not in the way
    site.at.run()
    _upload(site.at, "mine.pt", site.checkpoint.read_bytes())
    assert not site.at.exception and not site.at.error
    kept = list((site.root / "workspace" / "uploads").glob("mine-*.pt"))
    assert len(kept) == 1
    assert site.at.sidebar.selectbox(key="checkpoint").value == str(kept[0])


def test_malicious_upload_is_refused_and_never_runs(site):
    marker = site.root / "MARKER"
    evil = site.root / "evil.pt"
    torch.save({"format_version": 1, "state_dict": TouchOnUnpickle(marker)}, evil)
    site.at.run()
    _upload(site.at, "evil.pt", evil.read_bytes())
    message = _only_error(site.at)
    assert "evil.pt" in message and "refused" in message
    assert not marker.exists()
    uploads = site.root / "workspace" / "uploads"
    assert not uploads.exists() or not any(uploads.iterdir())


def test_upload_over_the_size_limit_is_refused(site, monkeypatch):
    monkeypatch.setenv("PLATELENS_MAX_UPLOAD_MB", "0.5")
    site.at.run()
    _upload(site.at, "big.pt", site.checkpoint.read_bytes() + bytes(2**20))
    assert "upload limit" in _only_error(site.at)
