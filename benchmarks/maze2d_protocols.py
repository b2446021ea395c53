"""The maze2d protocol table (issue 17): for each maze, single task (the maze's goal) and multi-task
(a random free-cell goal each episode), under Diffuser's protocol (plan once, open loop, no
smoothing, one candidate: the map is never read), the run's default settings, and a new plan at
every env step. One network evaluation per plan throughout.

    python benchmarks/maze2d_protocols.py run --maze umaze            # trains the default model if missing,
                                                                      # scores the missing rows
    python benchmarks/maze2d_protocols.py run --maze large --rows diffuser-layout default-random
    python benchmarks/maze2d_protocols.py table                       # rebuilds the table from the stored rows

Each model is the maze preset's default (`mmftraj train --task maze2d --maze M`, training seed 0).
Rows are scored on evaluation seed 20000 (episodes 20000-20299), which no tuning ever used (the
defaults were chosen on seeds 0-99 and 1000-1099). Each finished row leaves one JSON under
benchmarks/records/maze2d_protocols/, so the table accumulates across sessions and machines.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from mmftraj.experiments import grid

ROOT = Path(__file__).parent / "records" / "maze2d_protocols"
MAZES = ["umaze", "medium", "large"]
PROTOCOLS = ["diffuser", "default", "every-step"]
GOALS = ["layout", "random"]
EVAL_SEED = 20000
KEEP = ("score_mean", "score_se", "success_rate", "episodes", "seed", "plans_per_episode", "plan_seconds_per_episode",
        "plan_latency_ms", "plan_latency_ms_batch1", "replan_every", "smooth", "candidates", "rollout_wall_s",
        "threads", "evaluations_per_plan")
# Published scores (issue 17's table), single task then multi-task, U-Maze / Medium / Large.
PUBLISHED = {
    "layout": {"Diffuser": (113.9, 121.5, 123.0), "Diffusion Veteran": (136.6, 150.7, 203.6),
               "HorizonFlow": (137.5, 154.8, 205.2)},
    "random": {"Diffuser": (128.9, 127.2, 132.1), "Hierarchical Diffuser": (144.1, 140.2, 165.5),
               "HorizonFlow": (145.1, 170.5, 216.5)},
}
TARGET = {"layout": (155, 158, 206), "random": (160, 175, 220)}


def row_name(protocol: str, goals: str) -> str:
    return f"{protocol}-{goals}"


def train_default(maze: str, runs_dir: Path, threads: int) -> Path:
    """The preset's default model (`mmf`, seed 0), trained once (resumed if a run stopped part way)."""
    run_dir = runs_dir / "maze2d" / f"protocol-{maze}-s0"
    if not (run_dir / "results.json").is_file():
        _, wall = grid.train_cell("maze2d", "mmf", 0, run_dir.name, runs_dir, preset=maze,
                             overrides=[f"train.threads={threads}"], progress=True)
        print(f"{maze}: trained in {wall / 60:.1f} min", flush=True)
    return run_dir


def score_row(run_dir: Path, maze: str, protocol: str, goals: str, episodes: int) -> dict:
    from mmftraj.planning.rollouts import protocol_overrides
    from mmftraj.runs import write_results
    from mmftraj.tasks import maze2d

    overrides = [*protocol_overrides(protocol), f"eval.goals={goals}"]
    out = run_dir / "protocols" / row_name(protocol, goals)
    results = maze2d.evaluate(run_dir, steps=[1], episodes=episodes, seed=EVAL_SEED, out=out, overrides=overrides)
    write_results(out, {"protocol": protocol, **results})  # beside its plots and scores.npz (goals, starts)
    trained = json.loads((run_dir / "results.json").read_text())
    return {"maze": maze, "protocol": protocol, "goals": goals, "checkpoint": run_dir.name,
            "train_steps": trained.get("steps"), "train_time_s": trained.get("train_time_s"),
            **{k: results["1-step"][k] for k in KEEP}}


def run(mazes: list[str], rows: list[str], episodes: int, runs_dir: Path, threads: int, root: Path = ROOT) -> None:
    """Score the cells (maze, protocol, goals) that have no record yet, training a maze's default
    model before its first missing row."""
    import torch

    torch.set_num_threads(threads)

    def path(cell) -> Path:
        maze, protocol, goals = cell
        return root / f"{maze}-{row_name(protocol, goals)}.json"

    def make(cell, _) -> dict:
        maze, protocol, goals = cell
        run_dir = train_default(maze, runs_dir, threads)
        t0 = time.perf_counter()
        record = score_row(run_dir, maze, protocol, goals, episodes)
        print(f"{maze} {row_name(protocol, goals)}: {record['score_mean']:.1f} ± {record['score_se']:.1f} "
              f"({record['success_rate']:.0%}, {time.perf_counter() - t0:.0f} s)", flush=True)
        return record

    cells = [(maze, p, g) for maze in mazes for g in GOALS for p in PROTOCOLS if row_name(p, g) in rows]
    grid.run_grid(cells, make, load=lambda cell: grid.read_record(path(cell)),
                  save=lambda cell, record: grid.write_record(path(cell), record))


def table(root: Path = ROOT) -> str:
    records = {(r["maze"], r["protocol"], r["goals"]): r
               for r in (json.loads(p.read_text()) for p in sorted(root.glob("*.json")))}
    if not records:
        return f"no rows yet under {root}/"
    lines = []
    for goals in GOALS:
        title = "single task (the maze's goal)" if goals == "layout" else "multi-task (a random goal each episode)"
        lines += [f"**{title}**, score ± s.e. (success; plans per episode, planning ms per episode)", "",
                  "| protocol | " + " | ".join(MAZES) + " |", "|---|" + "---:|" * len(MAZES)]
        for protocol in PROTOCOLS:
            cells = []
            for maze in MAZES:
                r = records.get((maze, protocol, goals))
                cells.append("not run" if r is None else
                             f"{r['score_mean']:.1f} ± {r['score_se']:.1f} ({r['success_rate']:.0%}; "
                             f"{r['plans_per_episode']:.1f}, {1000 * r['plan_seconds_per_episode']:.0f} ms)")
            lines.append(f"| {protocol} | " + " | ".join(cells) + " |")
        for name, scores in PUBLISHED[goals].items():
            lines.append(f"| *{name} (published)* | " + " | ".join(f"*{s:.1f}*" for s in scores) + " |")
        lines += ["| *target (issue 17)* | " + " | ".join(f"*≥ {s}*" for s in TARGET[goals]) + " |", ""]
    episodes = {r["episodes"] for r in records.values()}
    lines.append(f"Episodes per row: {', '.join(map(str, sorted(episodes)))}; evaluation seed {EVAL_SEED}; "
                 "1 network evaluation per plan.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="train the missing default models and score the missing rows")
    r.add_argument("--maze", nargs="+", default=MAZES, choices=MAZES)
    r.add_argument("--rows", nargs="+", default=[row_name(p, g) for g in GOALS for p in PROTOCOLS],
                   choices=[row_name(p, g) for g in GOALS for p in PROTOCOLS])
    r.add_argument("--episodes", type=int, default=300)
    r.add_argument("--runs-dir", type=Path, default=Path("runs"))
    r.add_argument("--threads", type=int, default=2, help="train.threads and evaluation threads")
    t = sub.add_parser("table", help="print the table from the stored rows")
    for p in (r, t):
        p.add_argument("--out", type=Path, default=ROOT,
                       help="where the rows are kept (default: the committed benchmarks/records/maze2d_protocols/; "
                            "point a quick check with fewer --episodes elsewhere)")
    args = parser.parse_args()
    if args.cmd == "run":
        run(args.maze, args.rows, args.episodes, args.runs_dir, args.threads, args.out)
    print(table(args.out))


if __name__ == "__main__":
    main()
