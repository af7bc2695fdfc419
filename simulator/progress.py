"""Progress for what takes seconds (a Docker image build, a scenario run, `generate`), on stderr.

Decided once per process like colour (simulator/colour.py): shown when stderr is a terminal,
or when --progress forces it; --no-progress hides it. Drawn with rich, which redraws in place on a
terminal; stdout stays clean for what a pipe reads (results, `--json`). Colour in the display
follows the same rule as every other output: --color/--no-color, else a terminal without NO_COLOR.
Code deep in the stack (simulator/target/images.py) asks `status()` without knowing any of this.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from simulator.colour import use_colour

progress_option = click.option("--progress/--no-progress", "progress", default=None,
                               help="Progress on stderr (default: when stderr is a terminal).")

_choice: dict[str, bool | None] = {"progress": None, "color": None}


def configure(progress: bool | None, color: bool | None = None) -> None:
    """The command line's choices, for every display this process makes."""
    _choice["progress"], _choice["color"] = progress, color


def enabled() -> bool:
    choice = _choice["progress"]
    return choice if choice is not None else sys.stderr.isatty()


def _console() -> Any:
    # imported here: start-up cost: rich only when progress is shown
    from rich.console import Console

    colour = use_colour(_choice["color"], err=True)
    # force_terminal: a forced display redraws in place even into a pipe or a CI log.
    return Console(stderr=True, force_terminal=True, no_color=not colour, highlight=False)


@contextmanager
def status(text: str) -> Iterator[None]:
    """A spinner with elapsed time while a block runs (an image build: seconds, nothing to count)."""
    if not enabled():
        yield
        return
    # imported here: start-up cost: rich only when progress is shown
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=_console(), transient=True) as bar:
        bar.add_task(text, total=None)
        yield


class Steps:
    """A bar per named step (recording, writing), updated with (done, total); silent when off."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> Steps:
        if enabled():
            # imported here: start-up cost: rich only when progress is shown
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=_console())
            self._bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    @property
    def active(self) -> bool:
        return self._bar is not None

    def update(self, name: str, done: float, total: float) -> None:
        if self._bar is None:
            return
        task = self._tasks.get(name)
        if task is None:
            task = self._tasks[name] = self._bar.add_task(name, total=total)
        self._bar.update(task, completed=done, total=total)
