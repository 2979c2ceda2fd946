"""Atomic file writes: write a temp file beside the target, then ``os.replace`` it into place.

Readers (the dashboard polling a run, a later launch trusting a cache) never see half a file, and a
crash mid-write (or a full disk) leaves only a hidden temp file that every reader ignores, or nothing.

Only regular files are ever replaced: a target that exists as a folder, a device node, a FIFO or a
socket is refused (``os.replace`` would swap a regular file in for ``/dev/null``). Outputs the user
names are checked up front by :func:`check_output_path`, which also refuses symbolic links, paths
below a file, and suffixes the writer does not support.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ocr_core.errors import InputError


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device node"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a file" if stat.S_ISREG(mode) else "not a regular file"


def check_output_path(path: str | Path, suffixes: Sequence[str] = (), what: str = "output file") -> Path:
    """Check that ``path`` is a place to write a new file, or a regular file to replace; return it.

    Refused: a suffix outside ``suffixes`` (when given; compared lower-case, with the dot), an existing
    folder, symbolic link, device node, FIFO or socket, and a path below something that is not a folder.

    Raises:
        InputError: one sentence naming the path and what to do instead.
    """
    path = Path(path)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        mode = None
    except NotADirectoryError:
        mode = None  # a parent is a file: said below, naming it
    except OSError as exc:
        raise InputError(f"{what} {path} cannot be checked ({exc.strerror or exc}); choose another path") from None
    if mode is not None and not stat.S_ISREG(mode):
        raise InputError(f"{what} {path} exists and is {_kind(mode)}; PlateLens only replaces regular files: "
                         "choose another path")
    if suffixes and path.suffix.lower() not in {s.lower() for s in suffixes}:
        raise InputError(f"{what} {path} has the suffix {path.suffix or '(none)'!r}, which PlateLens does not "
                         f"write; name it with {' or '.join(suffixes)}")
    for ancestor in path.absolute().parents:
        try:
            parent_mode = os.stat(ancestor).st_mode
        except FileNotFoundError:
            continue  # created on write
        except NotADirectoryError:
            continue  # a higher ancestor is the file; the loop reaches it
        except OSError as exc:
            raise InputError(f"{what} {path}: its folder {ancestor} cannot be checked ({exc.strerror or exc})") from None
        if not stat.S_ISDIR(parent_mode):
            raise InputError(f"{what} {path} is below {ancestor}, which is {_kind(parent_mode)}, not a folder; "
                             "choose another path")
        break
    return path


def check_output_folder(path: str | Path, what: str = "output folder") -> Path:
    """Check that ``path`` is an existing folder or can be created as one; return it.

    Raises:
        InputError: it exists and is not a folder, or it lies below a file.
    """
    path = Path(path)
    try:
        mode = os.stat(path).st_mode  # a link to a folder is a folder
    except FileNotFoundError:
        mode = None
    except NotADirectoryError:
        mode = None
    except OSError as exc:
        raise InputError(f"{what} {path} cannot be checked ({exc.strerror or exc}); choose another path") from None
    if mode is not None:
        if not stat.S_ISDIR(mode):
            raise InputError(f"{what} {path} exists and is {_kind(mode)}, "
                             "not a folder; choose another path")
        return path
    for ancestor in path.absolute().parents:
        try:
            parent_mode = os.stat(ancestor).st_mode
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            raise InputError(f"{what} {path}: its folder {ancestor} cannot be checked ({exc.strerror or exc})") from None
        if not stat.S_ISDIR(parent_mode):
            raise InputError(f"{what} {path} is below {ancestor}, which is a file, not a folder; choose another path")
        break
    return path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a hidden temp path in ``path``'s folder; on success it replaces ``path``, on error it is removed."""
    path = Path(path)
    _refuse_special(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        # mkstemp creates 0600; outputs are shared files, readable like any other.
        os.chmod(tmp, 0o644)
        _refuse_special(path)  # it may have appeared while the temp file was written
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _refuse_special(path: Path) -> None:
    """Refuse to replace an existing folder, device node, FIFO or socket (links are left to the caller)."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        raise InputError(f"{path} exists and is {_kind(mode)}; PlateLens only replaces regular files: "
                         "choose another path")


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write bytes atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write UTF-8 text atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write JSON (UTF-8, indented, non-ASCII kept) atomically."""
    write_text_atomic(path, json.dumps(data, ensure_ascii=False, indent=1) + "\n")
