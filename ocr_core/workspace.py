"""The workspace: where generated data, score caches and training runs live (``./workspace`` by default).

``PLATELENS_WORKSPACE`` overrides the location. The embedded synthetic test set is generated into it on
first use and reused afterwards.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from ocr_core.data import synth

DEMO_CHECKPOINT = Path(__file__).resolve().parent / "assets" / "demo.pt"
EMBEDDED_TESTSET = "synth-test"
EMBEDDED_COUNT = 1000
EMBEDDED_SEED = 20261121  # not a seed used for the demo checkpoint's training data
EMBEDDED_STYLES = ("ccpd", "ccpd-green")
SYNTH_MIX_SEED = 20261123  # the fine-tune mix (train --synth-mix); not a demo training or test seed
CAPTCHA_DEMO_CHECKPOINT = Path(__file__).resolve().parent / "assets" / "captcha-demo.pt"
EMBEDDED_CAPTCHA_TESTSET = "captcha-test"
EMBEDDED_CAPTCHA_COUNT = 1000
EMBEDDED_CAPTCHA_SEED = 20261202  # not a seed used for the captcha demo's training data (seed 1)
CAPTCHA_SPLIT_DIR = "captcha-real-split"
EMBEDDED_HARD_TESTSET = "synth-hard"
EMBEDDED_HARD_COUNT = 500
EMBEDDED_HARD_SEED = 20261203  # not a seed of the demo's training data nor of the easy embedded set


def workspace_dir() -> Path:
    """The workspace root (created if missing)."""
    root = Path(os.environ.get("PLATELENS_WORKSPACE", "workspace")).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    return root


def _subdir(name: str) -> Path:
    path = workspace_dir() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def runs_dir() -> Path:
    """Where training runs are written."""
    return _subdir("runs")


def datasets_dir() -> Path:
    """Where generated synthetic sets are written."""
    return _subdir("datasets")


def scores_dir() -> Path:
    """Where cached score frames are written."""
    return _subdir("scores")


def onnx_dir() -> Path:
    """Where checkpoints exported for the onnxruntime scoring backend are kept (by content hash)."""
    return _subdir("onnx")


def robustness_dir() -> Path:
    """Where robustness curves are kept (by checkpoint, dataset and crop count)."""
    return _subdir("robustness")


def pipelines_dir() -> Path:
    """Where augmentation pipelines (A.to_dict JSON) saved from the dashboard live."""
    return _subdir("augment")


def uploads_dir() -> Path:
    """Where checkpoints uploaded through the dashboard are kept."""
    return _subdir("uploads")


def max_upload_bytes() -> int:
    """The dashboard's checkpoint upload limit: ``PLATELENS_MAX_UPLOAD_MB`` megabytes (default 16)."""
    try:
        megabytes = float(os.environ.get("PLATELENS_MAX_UPLOAD_MB", "16"))
    except ValueError:
        megabytes = 16.0
    return int(megabytes * 2**20)


def synthetic_sets() -> list[Path]:
    """Generated synthetic sets in the workspace (folders holding a completion marker)."""
    return sorted(p.parent for p in datasets_dir().glob("*/.complete"))


def ensure_synthetic_set(
    name: str,
    count: int,
    seed: int,
    styles: tuple[str, ...] = EMBEDDED_STYLES,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """The workspace's synthetic set ``name`` (``count`` plates of ``styles`` from ``seed``), generated once.

    Generation goes to a temp folder that is renamed into place, so an interrupted run never leaves a
    half-written set that later runs would trust.
    """
    target = datasets_dir() / name
    if (target / ".complete").exists():
        return target
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=datasets_dir()))
    synth.generate(tmp, count, seed, styles=styles, progress=progress)
    _complete_into_place(tmp, target, seed, count)
    return target


def _complete_into_place(tmp: Path, target: Path, seed: int, count: int) -> None:
    # The completion marker first, then one rename: readers see a whole set or none.
    (tmp / ".complete").write_text(f"seed={seed} count={count}\n", encoding="utf-8")
    if target.exists():
        shutil.rmtree(target, ignore_errors=True)
    try:
        os.replace(tmp, target)
    except OSError:  # another session generated it at the same moment: use theirs
        shutil.rmtree(tmp, ignore_errors=True)


def ensure_embedded_testset(progress: Callable[[int, int], None] | None = None) -> Path:
    """The embedded synthetic test set's folder, generating it on first use."""
    return ensure_synthetic_set(EMBEDDED_TESTSET, EMBEDDED_COUNT, EMBEDDED_SEED, progress=progress)


def ensure_embedded_hard_set(progress: Callable[[int, int], None] | None = None) -> Path:
    """The embedded hard set's manifest: plates at night, in glare, blurred, tilted or dirty, generated once.

    Each plate is rendered like the easy set, then put under one condition of
    ``ocr_core.robustness.HARD_CONDITIONS`` (in turn), at severities that keep it legible; the manifest's
    ``condition`` column lets the dashboard slice by it.
    """
    import csv
    import io

    import cv2

    from ocr_core.atomic import write_text_atomic
    from ocr_core.robustness import HARD_CONDITIONS, harden

    target = datasets_dir() / EMBEDDED_HARD_TESTSET
    manifest = target / "manifest.csv"
    if (target / ".complete").exists() and manifest.is_file():
        return manifest
    tmp = Path(tempfile.mkdtemp(prefix=f".{EMBEDDED_HARD_TESTSET}.", dir=datasets_dir()))
    paths = synth.generate(tmp, EMBEDDED_HARD_COUNT, EMBEDDED_HARD_SEED, styles=EMBEDDED_STYLES)
    conditions = list(HARD_CONDITIONS)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["file", "text", "condition"])
    for i, path in enumerate(paths):
        condition = conditions[i % len(conditions)]
        image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        cv2.imwrite(str(path), cv2.cvtColor(harden(image, condition, EMBEDDED_HARD_SEED + i), cv2.COLOR_RGB2BGR))
        writer.writerow([path.name, path.stem.split("-", 1)[1], condition])
        if progress is not None:
            progress(i + 1, len(paths))
    write_text_atomic(tmp / "manifest.csv", buffer.getvalue())
    _complete_into_place(tmp, target, EMBEDDED_HARD_SEED, EMBEDDED_HARD_COUNT)
    return manifest


def ensure_embedded_captcha_set(progress: Callable[[int, int], None] | None = None) -> Path:
    """The embedded synthetic captcha test set's folder (1,000 captchas), generating it on first use."""
    return ensure_synthetic_set(EMBEDDED_CAPTCHA_TESTSET, EMBEDDED_CAPTCHA_COUNT, EMBEDDED_CAPTCHA_SEED,
                                styles=synth.CAPTCHA_STYLES, progress=progress)


def ensure_captcha_split(real_folder: Path) -> tuple[Path, Path]:
    """``train.csv`` and ``test.csv`` manifests of a real captcha folder's fixed held-out split.

    The split is ``ocr_core.data.captcha.captcha_split`` (30% test by a hash of the file name); the
    manifests list absolute paths, so the images stay where they are. Rewritten on every call (cheap).
    """
    import csv
    import io

    from ocr_core.atomic import write_text_atomic
    from ocr_core.data.captcha import captcha_split

    folder = _subdir(f"datasets/{CAPTCHA_SPLIT_DIR}")
    outputs = []
    for name, paths in zip(("train", "test"), captcha_split(Path(real_folder))):
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["file", "text"])
        writer.writerows([str(p.resolve()), p.stem] for p in paths)
        write_text_atomic(folder / f"{name}.csv", buffer.getvalue())
        outputs.append(folder / f"{name}.csv")
    return outputs[0], outputs[1]


def ensure_synthetic_mix(count: int, progress: Callable[[int, int], None] | None = None) -> Path:
    """``count`` synthetic ccpd + ccpd-green plates with uniform provinces, to mix into a fine-tune.

    A real set is usually dominated by one province (284 of the 297 real crops are 皖); the mix keeps
    the other province glyphs in every epoch, so the fine-tune does not learn that prior.
    """
    if count <= 0:
        raise ValueError(f"the synthetic mix needs a positive plate count, got {count}")
    return ensure_synthetic_set(f"synth-mix-{count}", count, SYNTH_MIX_SEED, progress=progress)
