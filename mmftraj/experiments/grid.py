"""One runner for grids of training runs: variant labels × seeds × whatever else a grid varies.

Each cell trains as a resumable RunRequest, its record (one small JSON) is stored
atomically the moment the cell is done, and N processes can share a grid, each making cells
I, I + N, I + 2N, ... Why one runner: the report and the studies in benchmarks/ need the same
guarantees, so they get them from one place. An interrupted grid picks up where it stopped (a
stored record is not made again; a half-trained run resumes from its checkpoint), two shards
never touch the same cell, and a record is never half written. What a record holds, and how a
table is made of them, is each grid's own business.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable, Hashable, Iterable
from pathlib import Path

from ..core.objective import label_options
from ..errors import UserError
from ..io import atomic_write_text
from ..run_request import RunRequest
from ..runs import train_run


def parse_shard(text: str | None, first: int = 0) -> tuple[int, int]:
    """`I/N` -> (i, n) with 0 <= i < n: this process makes cells i, i + n, i + 2n, ... of the grid.
    `first` is the number the command line counts shards from (the report 0, pusht_grid.py 1)."""
    if text is None:
        return 0, 1
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise UserError(f"--shard takes I/N (e.g. {first}/2), got {text!r}") from None
    if n < 1 or not first <= i < n + first:
        raise UserError(f"--shard {text}: need {first} <= I {'<' if first == 0 else '<='} N")
    return i - first, n


def train_cell(task: str, label: str, seed: int, name: str, runs_dir: str | Path | None = None, overrides=(),
          preset: str | None = None, config_file: str | Path | None = None, group: str | None = None,
          progress: bool = False) -> tuple[dict, float]:
    """Train one cell, or resume or finish it if its run folder is there: (results.json's content,
    wall seconds). `label` names the variant and the options it implies (`meanflow-tmodel`:
    mmftraj.core.objective.label_options), appended to `overrides`. Without `runs_dir` the run
    goes to a throwaway folder, deleted afterwards (a study that keeps only the record)."""
    variant, extra = label_options(label)
    runs = Path(runs_dir) if runs_dir is not None else Path(tempfile.mkdtemp(prefix=f"{task}-grid-"))
    t0 = time.perf_counter()
    try:
        results = train_run(RunRequest(task, preset, config_file, (*overrides, *extra), variant, seed=seed, name=name,
                                       group=group, runs_dir=runs, resume=True, progress=progress))
    finally:
        if runs_dir is None:
            shutil.rmtree(runs, ignore_errors=True)
    return results, round(time.perf_counter() - t0, 1)


def read_record(path: Path) -> dict | None:
    """The stored record at `path`, or None when the cell has none yet."""
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else None


def write_record(path: Path, record, sort_keys: bool = False) -> None:
    """Store a record as indented JSON, atomically (a reader sees the old file or the whole new one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(record, indent=1, sort_keys=sort_keys, default=float) + "\n")


def run_grid(cells: Iterable[Hashable], make: Callable[[Hashable, dict | None], dict],
             load: Callable[[Hashable], dict | None], save: Callable[[Hashable, dict], None] | None = None,
             complete: Callable[[Hashable, dict], bool] = lambda cell, record: True,
             shard: tuple[int, int] = (0, 1), train: bool = True) -> tuple[dict, list]:
    """Every cell's record, making the missing ones this process owns: ({cell: record}, [cells left
    without one]). A cell whose stored record (`load`) is `complete` is reused; otherwise, when
    `train` and the cell is in `shard`, `make(cell, stored record or None)` trains and scores it and
    `save` stores the new record before the next cell starts."""
    records, missing = {}, []
    for i, cell in enumerate(cells):
        record = load(cell)
        if record is not None and complete(cell, record):
            records[cell] = record
            continue
        if not train or i % shard[1] != shard[0]:
            missing.append(cell)
            continue
        record = make(cell, record)
        if save is not None:
            save(cell, record)
        records[cell] = record
    return records, missing
