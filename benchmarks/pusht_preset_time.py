"""Wall time of Push-T's CPU preset, start to finish, as a user runs it (issue 30: ≤ 60 min on 2 cores).

    python benchmarks/pusht_preset_time.py --out benchmarks/records/pusht/cpu_preset_time.json

Runs `mmftraj train --task pusht` (the defaults: `mmf`, 90 episodes, 20000 steps, an evaluation
on the selection and test starts every 1000 steps) in a subprocess and records its wall time
(training, evaluations, checkpoints and start-up together), the trainer's own clock, the peak
memory, the threads it used, and the load average before and after: the figure only means what
it says when nothing else ran on the machine, and the load average is the witness.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="the record (JSON) to write")
    parser.add_argument("--runs-dir", type=Path, default=None, help="where the run goes (default: a temporary folder)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("extra", nargs="*", help="more `mmftraj train` options, after --")
    args = parser.parse_args()
    runs = args.runs_dir or Path(tempfile.mkdtemp(prefix="pusht-time-"))
    command = [sys.executable, "-m", "mmftraj", "train", "--task", "pusht", "--seed", str(args.seed),
               "--name", "preset-time", "--runs-dir", str(runs), *args.extra]
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    subprocess.run(command, check=True)
    wall = time.perf_counter() - t0
    load_after = os.getloadavg()
    results = json.loads((runs / "pusht" / "preset-time" / "results.json").read_text())
    record = {
        "command": " ".join(["mmftraj", *command[3:]]),
        "wall_min": round(wall / 60, 2),
        "train_time_min": round(results["train_time_s"] / 60, 2),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20, 2),
        "threads": results.get("threads"),
        "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "load_average_1_5_15_before": [round(x, 2) for x in load_before],
        "load_average_1_5_15_after": [round(x, 2) for x in load_after],
        "results": {k: results[k] for k in ("steps", "selected_step", "selected_test_score", "mean_last_test_score",
                                            "mean_last_n", "last_test_score") if k in results},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
