"""Progress bars: shown on an interactive terminal, silent in pipes and in CI."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

__all__ = ["Progress", "interactive", "progress"]


class Progress(Protocol):
    def advance(self, n: float = 1) -> None: ...

    def total(self, total: float | None) -> None: ...


def interactive() -> bool:
    """True when a human is watching: stderr is a terminal and we are not in CI."""
    return sys.stderr.isatty() and not os.environ.get("CI")


class _Silent:
    def advance(self, n: float = 1) -> None:
        pass

    def total(self, total: float | None) -> None:
        pass


class _Rich:
    def __init__(self, bar: object, task: object) -> None:
        self._bar = bar
        self._task = task

    def advance(self, n: float = 1) -> None:
        self._bar.advance(self._task, n)  # type: ignore[attr-defined]

    def total(self, total: float | None) -> None:
        self._bar.update(self._task, total=total)  # type: ignore[attr-defined]


@contextmanager
def progress(description: str, total: float | None = None) -> Iterator[Progress]:
    """A progress bar for ``description``; a no-op unless ``interactive()``."""
    if not interactive():
        yield _Silent()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as RichProgress

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with RichProgress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield _Rich(bar, task)
