"""Atomic file and directory writes: a reader sees the old state or the new one, never half.

A directory is built under a temporary sibling name and renamed into place once every file
in it has been written and flushed, so an interrupted write never leaves a directory that
looks complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = [
    "atomic_directory",
    "atomic_write_json",
    "atomic_write_text",
    "replaceable_directory_problem",
    "write_parquet",
]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and an atomic rename."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        # mkstemp creates 0600; give the file the permissions a plain open() would.
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n")


def write_parquet(frame: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write a DataFrame to Parquet (pyarrow) without its index, flushed to disk."""
    frame.to_parquet(path, engine="pyarrow", index=False)
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def replaceable_directory_problem(
    path: str | os.PathLike[str], own_files: tuple[str, ...], kind: str
) -> str | None:
    """Why ``path`` must not be replaced whole by a ``kind`` directory, or ``None`` if it may.

    ``atomic_directory`` replaces its target whole, so the target must be absent, an empty
    directory, or a ``kind`` directory (only ``own_files`` in it); never a file, a directory
    holding anything else, or the current directory or one of its parents. Callers turn the
    message into their own error type.
    """
    target = Path(path)
    if not target.exists() and not target.is_symlink():
        return None
    if not target.is_dir():
        return f"{target}: exists and is not a directory; choose another --out or remove it"
    resolved = target.resolve()
    cwd = Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        return (
            f"{target}: is the current directory or one of its parents; a {kind} replaces its "
            "directory whole, so choose a new directory for --out"
        )
    others = sorted(p.name for p in target.iterdir() if p.name not in own_files)
    if others:
        shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        return (
            f"{target}: exists and is not a {kind} directory (it holds {shown}); a {kind} "
            "replaces its directory whole, so choose another --out or remove it"
        )
    return None


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike[str], *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a fresh temporary directory that replaces ``path`` when the block succeeds.

    On an exception the temporary directory is removed and ``path`` is untouched. With
    ``overwrite`` an existing ``path`` is replaced; without it, an existing ``path`` raises
    ``FileExistsError`` before anything is written.
    """
    target = Path(path).resolve()
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} already exists; choose another --out or remove it")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp creates 0700
    try:
        yield tmp
        _fsync_dir(tmp)
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
