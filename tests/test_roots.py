"""Data roots: what the dashboard's path inputs may read, and checked checkpoint uploads."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ocr_core import workspace
from ocr_core.checkpoint import read_checkpoint, store_uploaded_checkpoint
from ocr_core.data.sources import list_source
from ocr_core.errors import InputError
from ocr_core.roots import OUTSIDE_ROOTS, ROOTS_ENV, confine, confine_listing, data_roots, is_inside


@pytest.fixture
def layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_images):
    """A workspace and an allowed folder, plus a 'secret' folder outside every root."""
    ws = tmp_path / "workspace"
    allowed = tmp_path / "allowed"
    secret = tmp_path / "secret"
    make_images(allowed / "plates", ["皖A12345", "沪B67890"])
    make_images(secret, ["皖C11111"])
    monkeypatch.setenv("PLATELENS_WORKSPACE", str(ws))
    monkeypatch.setenv(ROOTS_ENV, str(allowed))
    return ws, allowed, secret


def test_default_roots_are_workspace_assets_and_the_environment(layout):
    ws, allowed, _ = layout
    roots = data_roots()
    assert roots == [ws.resolve(), workspace.DEMO_CHECKPOINT.parent.resolve(), allowed.resolve()]


def test_paths_inside_the_roots_pass(layout):
    ws, allowed, _ = layout
    assert confine(allowed / "plates", "dataset path") == allowed / "plates"
    assert is_inside(workspace.DEMO_CHECKPOINT, data_roots())
    assert is_inside(ws / "runs" / "x" / "best.pt", data_roots())  # need not exist yet


@pytest.mark.parametrize("trick", ["plain", "dotdot", "prefix"])
def test_paths_outside_the_roots_are_refused(layout, trick):
    _, allowed, secret = layout
    path = {
        "plain": secret,
        "dotdot": allowed / "plates" / ".." / ".." / "secret",
        # /tmp/x/allowed-evil shares a string prefix with /tmp/x/allowed but is another folder
        "prefix": allowed.parent / "allowed-evil",
    }[trick]
    with pytest.raises(InputError, match=OUTSIDE_ROOTS) as info:
        confine(path, "dataset path")
    assert ROOTS_ENV in str(info.value)


def test_symlink_that_escapes_is_refused(layout):
    _, allowed, secret = layout
    link = allowed / "link-out"
    link.symlink_to(secret, target_is_directory=True)
    with pytest.raises(InputError, match=OUTSIDE_ROOTS):
        confine(link, "dataset path")
    inner = allowed / "link-in"
    inner.symlink_to(allowed / "plates", target_is_directory=True)
    assert confine(inner, "dataset path") == inner


def test_listing_drops_files_that_escape_by_symlink_or_manifest(layout):
    _, allowed, secret = layout
    folder = allowed / "plates"
    escaped_file = next(secret.glob("*.png"))
    (folder / "沪D22222.png").symlink_to(escaped_file)
    listing = confine_listing(list_source(folder))
    assert sorted(Path(s.path).name for s in listing.samples) == ["沪B67890.png", "皖A12345.png"]
    assert (str(folder / "沪D22222.png"), OUTSIDE_ROOTS) in listing.skipped

    manifest = allowed / "m.json"
    manifest.write_text(json.dumps([{"file": "plates/皖A12345.png", "text": "皖A12345"},
                                    {"file": os.path.relpath(escaped_file, allowed), "text": "皖C11111"}]))
    listing = confine_listing(list_source(manifest))
    assert [s.label for s in listing.samples] == ["皖A12345"]
    assert len(listing.skipped) == 1

    only_out = allowed / "out.json"
    only_out.write_text(json.dumps([{"file": str(escaped_file), "text": "皖C11111"}]))
    with pytest.raises(InputError, match="every file"):
        confine_listing(list_source(only_out))


def test_upload_is_kept_under_a_hashed_name(tmp_path, tiny_checkpoint):
    data = tiny_checkpoint.read_bytes()
    path = store_uploaded_checkpoint(data, "my model (v2).pt", tmp_path / "uploads", max_bytes=len(data))
    assert path.parent == tmp_path / "uploads"
    assert path.name.startswith("my_model__v2_-") and path.suffix == ".pt"
    assert read_checkpoint(path)["arch"] == "small"


def test_upload_over_the_limit_is_refused_and_nothing_is_kept(tmp_path, tiny_checkpoint):
    data = tiny_checkpoint.read_bytes()
    with pytest.raises(InputError, match="upload limit"):
        store_uploaded_checkpoint(data, "big.pt", tmp_path / "uploads", max_bytes=len(data) - 1)
    assert not (tmp_path / "uploads").exists() or not any((tmp_path / "uploads").iterdir())


@pytest.mark.parametrize("content", [b"", b"hello", os.urandom(4096)])
def test_upload_of_garbage_is_refused_and_nothing_is_kept(tmp_path, content):
    with pytest.raises(InputError, match="uploaded file x.pt"):
        store_uploaded_checkpoint(content, "x.pt", tmp_path / "uploads", max_bytes=2**20)
    assert not any((tmp_path / "uploads").iterdir())


def test_upload_limit_follows_the_environment(monkeypatch):
    monkeypatch.setenv("PLATELENS_MAX_UPLOAD_MB", "2")
    assert workspace.max_upload_bytes() == 2 * 2**20
    monkeypatch.setenv("PLATELENS_MAX_UPLOAD_MB", "lots")
    assert workspace.max_upload_bytes() == 16 * 2**20
