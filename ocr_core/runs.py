"""Run folders: status, history and options files, listing runs, and launching or stopping training.

A training run is its own process (``python -m ocr_core train``); the dashboard starts it, polls
``history.jsonl`` and ``status.json``, and stops it with SIGTERM (the trainer then saves ``last.pt``).
A run whose status says ``running`` but whose process is gone (killed, machine restarted) is ``failed``.

A run folder has one writer at a time: :func:`claim_run_folder` takes an exclusive ``flock`` on
``train.lock`` in the folder for the whole run, so a second ``train`` into the same folder is refused
instead of interleaving ``history.jsonl``; and a new run never appends to another run's history
(``--resume`` continues a run).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import pandas as pd

from ocr_core.atomic import check_output_folder, write_json_atomic
from ocr_core.errors import InputError

try:
    import fcntl
except ImportError:  # Windows: no flock; run folders are not locked there (one writer is then up to the user)
    fcntl = None  # type: ignore[assignment]

HISTORY_FILE = "history.jsonl"
STATUS_FILE = "status.json"
OPTIONS_FILE = "options.json"
LOG_FILE = "train.log"
LOCK_FILE = "train.lock"  # not hidden: hidden names in a run folder are temp files of atomic writes
RUN_STATES = ("running", "finished", "stopped", "failed")
PROGRESS_INTERVAL_S = 2.0  # the Train page polls every 2 s; writing more often would only cost disk syncs


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from ``path``, or None when missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_status(run_dir: Path, state: str, pid: int | None = None, **extra: Any) -> None:
    """Record the run's state with its process id (this process by default) and a timestamp."""
    previous = read_json(run_dir / STATUS_FILE) or {}
    status = {"state": state, "pid": pid or os.getpid(), "started": previous.get("started", _now()),
              "updated": _now()}
    if state == "running":
        status["started"] = _now()
    status.update(extra)
    write_json_atomic(run_dir / STATUS_FILE, status)


def write_progress(run_dir: Path, phase: str, done: int, total: int, epoch: int = 0, epochs: int = 0) -> None:
    """Record how far a running run is within its current phase (``decode`` or ``train``) in its status file."""
    status = read_json(run_dir / STATUS_FILE) or {"state": "running", "pid": os.getpid(), "started": _now()}
    status["updated"] = _now()
    status["progress"] = {"phase": phase, "done": int(done), "total": int(total), "epoch": int(epoch),
                          "epochs": int(epochs)}
    write_json_atomic(run_dir / STATUS_FILE, status)


class ProgressWriter:
    """Calls :func:`write_progress` at most once per ``interval_s``, and always when a phase starts or completes."""

    def __init__(self, run_dir: Path, interval_s: float = PROGRESS_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.run_dir = run_dir
        self.interval_s = interval_s
        self.clock = clock
        self._last = -float("inf")
        self._step: tuple[str, int] | None = None

    def __call__(self, phase: str, done: int, total: int, epoch: int = 0, epochs: int = 0) -> None:
        """Report ``done`` of ``total`` steps of ``phase``; dropped when the last write was too recent."""
        now = self.clock()
        # A new phase or epoch is always written: otherwise the page would go on showing the finished
        # phase ("Decoding images: 300 of 300") for up to interval_s into the next one.
        step = (phase, epoch)
        if done < total and step == self._step and now - self._last < self.interval_s:
            return
        self._last, self._step = now, step
        write_progress(self.run_dir, phase, done, total, epoch, epochs)


def progress_line(run_dir: Path) -> tuple[float, str] | None:
    """A running run's progress as a fraction and a sentence for a progress bar; None when there is none."""
    status = read_json(run_dir / STATUS_FILE) or {}
    progress = status.get("progress")
    if status.get("state") != "running" or not isinstance(progress, dict):
        return None
    try:
        done, total = int(progress["done"]), int(progress["total"])
        phase, epoch, epochs = str(progress["phase"]), int(progress.get("epoch", 0)), int(progress.get("epochs", 0))
    except (KeyError, TypeError, ValueError):
        return None
    fraction = min(max(done / total, 0.0), 1.0) if total > 0 else 0.0
    if phase == "decode":
        return fraction, f"Decoding images: {done:,} of {total:,}"
    return fraction, f"Epoch {epoch} of {epochs}: batch {done:,} of {total:,}"


def append_history(path: Path, row: dict[str, Any]) -> None:
    """Append one epoch as a JSON line and flush it to disk, so pollers see whole lines."""
    line = json.dumps({k: _json_safe(v) for k, v in row.items()}, ensure_ascii=False) + "\n"
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def read_history(run_dir: Path) -> pd.DataFrame:
    """The run's epochs as a frame; a partial last line (a process killed mid-write) is ignored."""
    rows: list[dict[str, Any]] = []
    try:
        text = (run_dir / HISTORY_FILE).read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return pd.DataFrame(rows)


class RunLock:
    """An exclusive, non-blocking ``flock`` on a run folder's lock file, held until :meth:`release`.

    The kernel drops the lock when the holder exits, however it exits (SIGKILL included), so a crashed
    run never leaves its folder locked. The lock file holds the holder's process id, for messages.
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self._fh: Any = None

    def acquire(self) -> RunLock:
        """Take the lock.

        Raises:
            InputError: another process holds it, or the folder cannot hold a lock file.
        """
        if fcntl is None:
            return self
        path = self.run_dir / LOCK_FILE
        try:
            fh = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held open for the whole run
        except OSError as exc:
            raise InputError(f"run folder {self.run_dir} cannot be locked ({exc.strerror or exc}); "
                             "check its permissions or choose another --out") from None
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            holder = fh.read().strip()[:20]
            fh.close()
            who = f" (process {holder})" if holder.isdigit() else ""
            raise InputError(f"run folder {self.run_dir} is being written by another training run{who}; wait for "
                             "it to end, stop it, or choose another --out") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        self._fh = fh
        return self

    def release(self) -> None:
        """Drop the lock (the lock file stays; removing it would race with the next holder)."""
        if self._fh is not None:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def run_folder_locked(run_dir: Path) -> bool:
    """Whether a process holds ``run_dir``'s lock right now (False where locks are unsupported)."""
    if fcntl is None or not (Path(run_dir) / LOCK_FILE).is_file():
        return False
    try:
        lock = RunLock(run_dir).acquire()
    except InputError:
        return True
    lock.release()
    return False


def history_rows(run_dir: Path) -> int:
    """Number of lines in the run's ``history.jsonl`` (0 when it is missing or empty)."""
    try:
        with open(Path(run_dir) / HISTORY_FILE, "rb") as fh:
            return sum(1 for line in fh if line.strip())
    except OSError:
        return 0


def check_new_run_folder(run_dir: Path) -> None:
    """Refuse a new run into a folder that is not a folder, that another run is writing, or that already
    holds a run's history.

    Raises:
        InputError: one sentence saying to wait, to use ``--resume`` or to choose another ``--out``.
    """
    check_output_folder(run_dir, "run folder")
    if fcntl is not None and (Path(run_dir) / LOCK_FILE).is_file():
        RunLock(run_dir).acquire().release()  # raises, naming the holder, while another run writes there
    _check_no_history(run_dir)


def _check_no_history(run_dir: Path) -> None:
    rows = history_rows(run_dir)
    if rows:
        raise InputError(f"run folder {run_dir} already holds a run ({rows} epoch(s) in {HISTORY_FILE}); use "
                         f"--resume {run_dir} to continue it or choose a new --out")


def claim_run_folder(run_dir: Path, new_run: bool) -> RunLock:
    """Create and lock a run folder for this process; a new run also needs a folder without history.

    Use as ``with claim_run_folder(out, new_run=not resume): ...``; the lock is held until the block ends.

    Raises:
        InputError: another run is writing there, or (``new_run``) a finished run's history is there.
    """
    run_dir = Path(run_dir)
    check_output_folder(run_dir, "run folder")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"run folder {run_dir} cannot be created ({exc.strerror or exc}); choose another --out") \
            from None
    lock = RunLock(run_dir).acquire()
    if new_run:
        try:
            _check_no_history(run_dir)
        except InputError:
            lock.release()
            raise
    return lock


def pid_alive(pid: int) -> bool:
    """Whether a process with this id is running (zombies count as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def run_state(run_dir: Path) -> str:
    """``running``, ``finished``, ``stopped`` or ``failed`` (a dead process still marked running)."""
    status = read_json(run_dir / STATUS_FILE)
    if status is None:
        return "failed"
    state = str(status.get("state", "failed"))
    if state == "running" and not pid_alive(int(status.get("pid", -1))):
        return "failed"
    return state if state in RUN_STATES else "failed"


def list_runs(runs_root: Path) -> pd.DataFrame:
    """One row per run folder: name, state, epochs done, best val accuracy and CER, paths."""
    rows = []
    if runs_root.is_dir():
        for run_dir in sorted((p for p in runs_root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime,
                              reverse=True):
            if not (run_dir / STATUS_FILE).exists() and not (run_dir / OPTIONS_FILE).exists():
                continue
            history = read_history(run_dir)
            options = read_json(run_dir / OPTIONS_FILE) or {}
            best_acc = float(history["val_accuracy"].max()) if "val_accuracy" in history else float("nan")
            best_cer = float(history["val_cer"].min()) if "val_cer" in history else float("nan")
            rows.append({
                "run": run_dir.name,
                "state": run_state(run_dir),
                "epochs": f"{len(history)}/{options.get('epochs', '?')}",
                "best_val_accuracy": best_acc,
                "best_val_cer": best_cer,
                "arch": options.get("arch", ""),
                "data": options.get("data", ""),
                "best_checkpoint": str(run_dir / "best.pt") if (run_dir / "best.pt").exists() else "",
                "path": str(run_dir),
            })
    return pd.DataFrame(rows, columns=["run", "state", "epochs", "best_val_accuracy", "best_val_cer", "arch",
                                       "data", "best_checkpoint", "path"])


def train_command(options: dict[str, Any]) -> list[str]:
    """The CLI command line for a training run described by ``options`` (TrainOptions field names).

    With ``processes`` above 1 the run starts under torchrun on this machine (one process per GPU, or
    per CPU share), so that the Train page can use several GPUs.
    """
    processes = int(options.get("processes") or 1)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
                "-m", "ocr_core"] if processes > 1 else [sys.executable, "-m", "ocr_core"]
    cmd = [*launcher, "train", "--data", str(options["data"]), "--out", str(options["out"])]
    flags = {"val": "--val", "val_split": "--val-split", "arch": "--arch", "epochs": "--epochs",
             "batch_size": "--batch-size", "lr": "--lr", "augment": "--augment", "init": "--init",
             "device": "--device", "seed": "--seed", "workers": "--workers",
             "distill_temperature": "--distill-temperature"}
    for key, flag in flags.items():
        value = options.get(key)
        if value not in (None, ""):
            cmd += [flag, str(value)]
    for teacher in options.get("teachers") or []:
        cmd += ["--teacher", str(teacher)]
    if options.get("distill_other_positions"):
        cmd.append("--distill-other-positions")
    return cmd


def launch_training(options: dict[str, Any]) -> subprocess.Popen[bytes]:
    """Start a training run as a detached process that outlives the caller; its output goes to train.log.

    Raises:
        InputError: the run folder already holds a run, or another run is writing there.
    """
    run_dir = Path(options["out"])
    # Refused here too, before the status file is touched: a refused child would leave a finished run
    # (or a running one) marked as this new, dead process's run.
    check_new_run_folder(run_dir)
    if run_folder_locked(run_dir):
        raise InputError(f"run folder {run_dir} is being written by another training run; wait for it to end, "
                         "stop it, or choose another run name")
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / LOG_FILE, "ab") as log:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module, arguments as a list
            train_command(options), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    # Marked running at once, so the run is listed as running while the child is still importing torch.
    write_status(run_dir, "running", pid=process.pid)
    return process


def stop_run(run_dir: Path) -> bool:
    """Ask a running training process to stop (SIGTERM: it saves ``last.pt`` and exits); False if not running."""
    status = read_json(run_dir / STATUS_FILE) or {}
    pid = int(status.get("pid", -1))
    if status.get("state") != "running" or not pid_alive(pid):
        return False
    os.kill(pid, signal.SIGTERM)
    return True
