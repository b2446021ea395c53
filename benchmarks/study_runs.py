"""One training run of a study cell, shared by the study scripts in benchmarks/.

A study names its variants by label (`fm`, `meanflow`, `mmf-paper`, ...: mmftraj.core.objective
.label_options); each cell trains once, quietly, in a throwaway runs folder unless the study keeps
its runs, and returns the run's results with its wall time.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path


def train_cell(task: str, preset: str | None, overrides: list[str], label: str, seed: int,
               keep: Path | None = None) -> tuple[dict, float]:
    """(results.json of the run, wall seconds) for `label` trained with `overrides` on `seed`."""
    from mmftraj.core.objective import label_options
    from mmftraj.runs import prepare_and_train

    variant, extra = label_options(label)
    runs = keep or Path(tempfile.mkdtemp(prefix=f"{task}-study-"))
    t0 = time.perf_counter()
    try:
        results = prepare_and_train(task=task, preset=preset, overrides=overrides + extra, objective=variant,
                                    seed=seed, name=f"{label}-s{seed}", runs_dir=runs, progress=False)
    finally:
        if keep is None:
            shutil.rmtree(runs, ignore_errors=True)
    return results, round(time.perf_counter() - t0, 1)
