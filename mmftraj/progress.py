"""Progress on long work: a rich bar on a terminal, plain `description i/total` lines in a pipe or
a log (a rich bar there prints nothing until it ends), nothing when disabled."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    track,
)

PLAIN_PROGRESS_EVERY_S = 10.0  # a progress line this often when stdout is not a terminal


def tracked(items, description: str, total: int, enabled: bool = True):
    """Yield `items` under a transient rich bar on a terminal; off one (a pipe, a log), a plain
    `description i/total` line once PLAIN_PROGRESS_EVERY_S have passed since the last, checked
    after each item, and after the last: a rich bar there would print nothing until it ends."""
    console = Console()
    if not enabled:
        yield from items
    elif console.is_terminal:
        yield from track(items, description=description, total=total, transient=True, console=console)
    else:
        last = time.perf_counter()
        for i, item in enumerate(items, 1):
            yield item
            now = time.perf_counter()
            if now - last >= PLAIN_PROGRESS_EVERY_S or i == total:
                console.print(f"{description} {i}/{total}", markup=False, highlight=False, soft_wrap=True)
                last = now


def training_bar(enabled: bool) -> Progress:
    """The training loop's bar: step/total, the loop's own info field, time left."""
    return Progress(
        TextColumn("[bold]train"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeRemainingColumn(),
        disable=not enabled,
        transient=False,
    )


@contextmanager
def progress_bar(description: str, total: int, enabled: bool = True) -> Iterator[Callable[[int], None]]:
    """Yield `advance(k)`: a transient rich bar on stderr when enabled and stderr is a terminal, a
    no-op otherwise, so library callers, tests and logs run without one (rich would leave blank lines)."""

    console = Console(stderr=True)
    if enabled and not console.is_terminal:  # a pipe or a log: a plain line every PLAIN_PROGRESS_EVERY_S
        yield _plain_advance(description, total)
        return
    if not enabled:
        yield lambda k: None
        return

    columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda k: bar.advance(task, k)


def _plain_advance(description: str, total: int) -> Callable[[int], None]:
    """advance(k) that prints `description done/total` on stdout, at most every PLAIN_PROGRESS_EVERY_S."""
    state = {"done": 0, "last": time.perf_counter()}

    def advance(k: int) -> None:
        state["done"] += k
        now = time.perf_counter()
        if now - state["last"] >= PLAIN_PROGRESS_EVERY_S or state["done"] >= total:
            Console().print(f"{description} {state['done']}/{total}", markup=False, highlight=False, soft_wrap=True)
            state["last"] = now

    return advance
