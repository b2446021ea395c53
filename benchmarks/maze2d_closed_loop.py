"""Closed-loop re-planning on maze2d (issue 31): which re-planning helps, with and without pushes.

Two stages, kept apart so the seeds that choose never report:

    python benchmarks/maze2d_closed_loop.py tune --maze umaze        # training seed 100, episodes 30000+
    python benchmarks/maze2d_closed_loop.py report --maze umaze      # training seed 0, episodes 20000-20299
    python benchmarks/maze2d_closed_loop.py table                    # both stages' tables from the records

`tune` trains the maze preset's default model (`mmf`) on training seed 100 (once; resumed if it
stopped) and scores every protocol below on evaluation seed 30000 (`--episodes`, default 100),
undisturbed and with pushes. `report` scores the protocols named by `--protocols` (the rows of
issue 31: open loop, the default, every step, and the closed loop chosen in tuning) on the protocol
table's models (`maze2d_protocols.py`'s `protocol-<maze>-s0`, training seed 0; trained here if
missing) with 300 episodes of evaluation seed 20000, single task and multi-task. Each finished
cell leaves one JSON under benchmarks/records/maze2d_closed_loop/{tuning,report}/, so the tables
accumulate across sessions. One network evaluation per plan throughout; every record keeps
`network_calls_per_env_step`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from mmftraj.experiments import grid

ROOT = Path(__file__).parent / "records" / "maze2d_closed_loop"
MAZES = ["umaze", "medium", "large"]
GOALS = ["layout", "random"]
TUNE_SEED, TUNE_EVAL_SEED, REPORT_EVAL_SEED = 100, 30000, 20000
# Each protocol: the eval settings it sets over the preset's defaults.
EVERY = ["eval.replan_every=1"]
PROTOCOLS = {
    "open-loop": ["eval.replan_missed=false"],  # one plan per episode, tracked to its end
    "default": [],  # a new plan only when one is used up away from the goal
    "every-step": EVERY,
    "every-step-nearest": [*EVERY, "eval.candidates=8", "eval.replan_select=nearest"],
    "every-step-fixed-noise": [*EVERY, "eval.fixed_noise=true"],
    "every-step-blend4": [*EVERY, "eval.blend=4"],
    "every-step-nearest-fixed": [*EVERY, "eval.candidates=8", "eval.replan_select=nearest", "eval.fixed_noise=true"],
    "coherent": ["eval.replan_every=1", "eval.candidates=8", "eval.replan_select=nearest", "eval.fixed_noise=true",
                 "eval.blend=4"],
    "default-extrapolate": ["eval.smooth_start=extrapolate"],
    "every-step-extrapolate": [*EVERY, "eval.smooth_start=extrapolate"],
    "every-step-nearest-extrapolate": [*EVERY, "eval.candidates=8", "eval.replan_select=nearest",
                                       "eval.smooth_start=extrapolate"],
    "coherent-extrapolate": ["eval.replan_every=1", "eval.candidates=8", "eval.replan_select=nearest",
                             "eval.fixed_noise=true", "eval.blend=4", "eval.smooth_start=extrapolate"],
    "every-step-speed1.5": [*EVERY, "eval.speed=1.5"],
    "every-step-speed2": [*EVERY, "eval.speed=2"],
    # re-planning every step, speed s tracks the fresh plan's state ceil(s): a look-ahead of s steps
    "every-step-speed3": [*EVERY, "eval.speed=3"],
    "every-step-speed4": [*EVERY, "eval.speed=4"],
    "every-step-speed6": [*EVERY, "eval.speed=6"],
    "every-step-speed8": [*EVERY, "eval.speed=8"],
    # eval.lookahead=L: track the plan state L - 1 past the next one (at speed 1: L steps ahead of now)
    "every-step-look8": [*EVERY, "eval.lookahead=8"],
    "every-step-look12": [*EVERY, "eval.lookahead=12"],
    "default-look4": ["eval.lookahead=4"],
    "default-look8": ["eval.lookahead=8"],
    "open-loop-look8": ["eval.replan_missed=false", "eval.lookahead=8"],
    # eval.plan_velocity=zero: every plan drawn from the agent's position at rest (a pushed velocity not kept)
    "default-rest": ["eval.plan_velocity=zero"],
    "every-step-look8-rest": [*EVERY, "eval.lookahead=8", "eval.plan_velocity=zero"],
    "every-4-look8-rest": ["eval.replan_every=4", "eval.lookahead=8", "eval.plan_velocity=zero"],
    "every-4": ["eval.replan_every=4"],
    "every-16": ["eval.replan_every=16"],
    "every-4-nearest": ["eval.replan_every=4", "eval.candidates=8", "eval.replan_select=nearest"],
    # a model trained with the goal at any step (model.goal_anywhere=true): 4 candidates, the goal at
    # 1/4, 1/2, 3/4 and all of the window, the earliest arrival kept; re-plans keep the old plan's timing
    "goalany-default": ["eval.candidates=4"],
    "goalany-every-step": [*EVERY, "eval.candidates=4"],
    "goalany-every-step-remaining": [*EVERY, "eval.candidates=4", "eval.replan_goal_step=remaining"],
    "goalany-every-4-remaining": ["eval.replan_every=4", "eval.candidates=4", "eval.replan_goal_step=remaining"],
    "every-4-coherent": ["eval.replan_every=4", "eval.candidates=8", "eval.replan_select=nearest",
                         "eval.fixed_noise=true", "eval.blend=4"],
}
# Disturbance conditions: a push changes the point mass's velocity by `push_size` (qvel units) in a
# random direction, at each env step with probability `push_rate`.
DISTURBANCES = {"none": [], "push": ["eval.push_size=2.0", "eval.push_rate=0.02"],
                "push-strong": ["eval.push_size=4.0", "eval.push_rate=0.05"]}
KEEP = ("score_mean", "score_se", "success_rate", "episodes", "seed", "plans_per_episode", "plan_seconds_per_episode",
        "network_calls_per_env_step", "evaluations_per_plan", "candidates", "replan_every", "replan_select",
        "fixed_noise", "blend", "smooth_start", "speed", "disturbances", "rollout_wall_s")


def cell_name(maze: str, goals: str, protocol: str, disturbance: str) -> str:
    return f"{maze}-{goals}-{protocol}-{disturbance}"


def train_model(maze: str, seed: int, runs_dir: Path, threads: int, goal_anywhere: bool = False) -> Path:
    """The preset's default model (`mmf`) of a training seed (seed 0 is the protocol table's), or
    the same trained with the goal at any step of the window."""
    name = f"protocol-{maze}-s0" if seed == 0 else f"closed-loop-tune-{maze}-s{seed}"
    if goal_anywhere:
        name = name.replace(f"-{maze}-", f"-{maze}-goalany-")
    run_dir = runs_dir / "maze2d" / name
    if not (run_dir / "results.json").is_file():
        extra = ["model.goal_anywhere=true"] if goal_anywhere else []
        _, wall = grid.train_cell("maze2d", "mmf", seed, name, runs_dir, preset=maze,
                                  overrides=[f"train.threads={threads}", *extra], progress=True)
        print(f"{maze} seed {seed}: trained in {wall / 60:.1f} min", flush=True)
    return run_dir


def score(run_dir: Path, train_seed: int, cell: tuple, episodes: int, eval_seed: int) -> dict:
    from mmftraj.runs import write_results
    from mmftraj.tasks import maze2d

    maze, goals, protocol, disturbance = cell
    overrides = [*PROTOCOLS[protocol], *DISTURBANCES[disturbance], f"eval.goals={goals}", "eval.plots=2"]
    out = run_dir / "closed_loop" / cell_name(*cell)
    results = maze2d.evaluate(run_dir, steps=[1], episodes=episodes, seed=eval_seed, out=out, overrides=overrides,
                              progress=False)
    write_results(out, {"protocol": protocol, **results})
    trained = json.loads((run_dir / "results.json").read_text())
    episode_scores = np.load(out / "scores.npz")["scores"].round(3).tolist()  # same episodes in every cell
    return {"episode_scores": episode_scores, "maze": maze, "goals": goals, "protocol": protocol,
            "disturbance": disturbance, "overrides": overrides,
            "checkpoint": run_dir.name, "train_seed": train_seed, "train_steps": trained.get("steps"),
            **{k: results["1-step"][k] for k in KEEP if k in results["1-step"]}}


def run(stage: str, mazes: list[str], goals: list[str], protocols: list[str], disturbances: list[str],
        episodes: int, runs_dir: Path, threads: int, root: Path = ROOT) -> None:
    import torch

    torch.set_num_threads(threads)
    seed, eval_seed = (TUNE_SEED, TUNE_EVAL_SEED) if stage == "tune" else (0, REPORT_EVAL_SEED)
    folder = root / ("tuning" if stage == "tune" else "report")

    def path(cell) -> Path:
        return folder / f"{cell_name(*cell)}.json"

    def make(cell, _) -> dict:
        t0 = time.perf_counter()
        model = train_model(cell[0], seed, runs_dir, threads, goal_anywhere=cell[2].startswith("goalany"))
        record = score(model, seed, cell, episodes, eval_seed)
        print(f"{stage} {cell_name(*cell)}: {record['score_mean']:.1f} ± {record['score_se']:.1f} "
              f"({record['success_rate']:.0%}; {record['network_calls_per_env_step']:.2f} network calls per env "
              f"step; {time.perf_counter() - t0:.0f} s)", flush=True)
        return record

    cells = [(m, g, p, d) for m in mazes for g in goals for d in disturbances for p in protocols]
    grid.run_grid(cells, make, load=lambda cell: grid.read_record(path(cell)),
                  save=lambda cell, record: grid.write_record(path(cell), record))


def paired_text(record: dict, base: dict | None) -> str:
    """`<br>` and record − base over the same episodes with its 95 % t-interval ("" without both)."""
    from mmftraj.experiments.paired import paired_test

    if base is None or record is base or "episode_scores" not in record or "episode_scores" not in base:
        return ""
    a, b = record["episode_scores"], base["episode_scores"]
    if len(a) != len(b):
        return ""
    t = paired_test([x - y for x, y in zip(a, b, strict=True)])
    return f"<br>{t.mean:+.1f} [{t.low:+.1f}, {t.high:+.1f}]"


def table(folder: Path) -> str:
    records = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    if not records:
        return f"no records yet under {folder}/"
    by = {(r["maze"], r["goals"], r["protocol"], r["disturbance"]): r for r in records}
    lines = []
    for goals in GOALS:
        for disturbance in DISTURBANCES:
            rows = [p for p in PROTOCOLS if any((m, goals, p, disturbance) in by for m in MAZES)]
            if not rows:
                continue
            lines += [f"**{goals} goals, disturbance: {disturbance}** — score ± s.e. (success; network calls per "
                      "env step); below it, minus the same model's undisturbed default on the same episodes, "
                      "95 % t-interval",
                      "", "| protocol | " + " | ".join(MAZES) + " |", "|---|" + "---:|" * len(MAZES)]
            for p in rows:
                cells = []
                for m in MAZES:
                    r = by.get((m, goals, p, disturbance))
                    base = by.get((m, goals, "goalany-default" if p.startswith("goalany") else "default", "none"))
                    cells.append("–" if r is None else f"{r['score_mean']:.1f} ± {r['score_se']:.1f} "
                                 f"({r['success_rate']:.0%}; {r['network_calls_per_env_step']:.2f})"
                                 + paired_text(r, base))
                lines.append(f"| {p} | " + " | ".join(cells) + " |")
            lines.append("")
    seeds = sorted({r["seed"] for r in records})
    lines.append(f"Episodes per cell: {', '.join(map(str, sorted({r['episodes'] for r in records})))}; "
                 f"evaluation seed {', '.join(map(str, seeds))}.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    parsers = {}
    for stage, episodes, protocols in (("tune", 100, list(PROTOCOLS)),
                                       ("report", 300, ["open-loop", "default", "every-step", "coherent"])):
        p = sub.add_parser(stage, help=f"score the missing cells of the {stage} stage")
        p.add_argument("--maze", nargs="+", default=MAZES, choices=MAZES)
        p.add_argument("--goals", nargs="+", default=GOALS if stage == "report" else ["layout"], choices=GOALS)
        p.add_argument("--protocols", nargs="+", default=protocols, choices=list(PROTOCOLS))
        p.add_argument("--disturbances", nargs="+", default=list(DISTURBANCES), choices=list(DISTURBANCES))
        p.add_argument("--episodes", type=int, default=episodes)
        p.add_argument("--runs-dir", type=Path, default=Path("runs"))
        p.add_argument("--threads", type=int, default=1, help="train.threads and evaluation threads")
        parsers[stage] = p
    parsers["table"] = sub.add_parser("table", help="print both stages' tables from the stored records")
    for p in parsers.values():
        p.add_argument("--out", type=Path, default=ROOT, help="where the records are kept")
    args = parser.parse_args()
    if args.cmd != "table":
        run(args.cmd, args.maze, args.goals, args.protocols, args.disturbances, args.episodes, args.runs_dir,
            args.threads, args.out)
    for stage in ("tuning", "report"):
        print(f"## {stage}\n\n{table(args.out / stage)}\n")


if __name__ == "__main__":
    main()
