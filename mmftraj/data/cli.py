"""`mmftraj data ...`: dataset generation and conversion commands (heavy imports stay lazy)."""

from __future__ import annotations

import re
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from ..cli_errors import user_errors
from ..envs.maze2d import SPECS
from ..envs.pointmaze import POINTMAZE
from ..errors import UserError, check_seed, choice_error
from ..io import check_writable
from . import load_episodes
from .d4rl import load_d4rl
from .generate import default_path
from .generate import generate as run
from .minari_io import export_minari
from .pointmaze import DEFAULT_STEPS, generate_pointmaze

MINARI_ID = re.compile(r"([\w.-]+/)?[\w.-]+-v\d+$")

app = typer.Typer(no_args_is_help=True)


@app.command()
@user_errors
def generate(
    env: str = typer.Argument(..., help="maze2d-umaze-v1, maze2d-medium-v1, maze2d-large-v1 (or eval-/open), or "
                              "PointMaze_UMaze-v3, PointMaze_Medium-v3, PointMaze_Large-v3 (a Minari dataset)."),
    samples: int = typer.Option(None, help="Steps to record (default as D4RL: 1e6 / 2e6 / 4e6; PointMaze 1e6 as "
                                "Minari)."),
    seed: int = typer.Option(0, help="Random seed (same seed: same file bytes)."),
    out: Path = typer.Option(None, help="Output .hdf5 (default datasets/maze2d/<env>.hdf5; a <name>.json manifest "
                             "goes beside it); PointMaze: the Minari datasets folder (default datasets/pointmaze)."),
    overwrite: bool = typer.Option(False, help="Replace an existing dataset file and its manifest."),
):
    """Generate a maze2d dataset the way D4RL did (one continuous waypoint-controller run), or a
    PointMaze dataset in Minari's format the way Minari's D4RL/pointmaze datasets were made."""
    check_seed(seed)
    key = env.split("/")[-1]
    if key not in SPECS and key not in POINTMAZE:
        raise choice_error("env to generate", env, [*SPECS, *POINTMAZE])
    if key in POINTMAZE:
        steps = DEFAULT_STEPS if samples is None else samples
        made = generate_pointmaze(key, steps=steps, seed=seed, root=out, overwrite=overwrite)
        Console().print(f"wrote Minari dataset {made.path} ({made.steps} steps, {made.episodes} episodes) in "
                        f"{made.seconds:.1f} s; train on it with `mmftraj train --task maze2d --maze "
                        f"{POINTMAZE[key].maze} --set data.env={key} --set "
                        f"data.path={made.path}`", soft_wrap=True, highlight=False)
        return
    target = Path(out) if out is not None else default_path(key)
    if target.suffix.lower() not in (".hdf5", ".h5"):
        raise UserError(f"--out {target} must end in .hdf5 or .h5 (its manifest is written beside it as "
                        f"{target.with_suffix('.json').name})")
    check_writable(target.parent, "--out folder")
    existing = [p for p in (target, target.with_suffix(".json")) if p.exists()]
    if existing and not overwrite:
        raise UserError(f"{' and '.join(map(str, existing))} already exist{'s' if len(existing) == 1 else ''}; "
                        "pass --overwrite to replace, or choose another --out")
    if existing:
        Console().print(f"replacing the existing {target} once the new file is complete", soft_wrap=True,
                        highlight=False)
    result = run(env, samples=samples, seed=seed, out=out)
    c = result.manifest["counts"]
    Console().print(
        f"wrote {result.path} ({c['steps']} steps, {c['episodes']} episodes, {c['goal_changes']} goal changes, "
        f"reward rate {c['reward_rate']:.4f}) in {result.seconds:.1f} s = {result.steps_per_second:,.0f} steps/s; "
        f"manifest {result.manifest_path}"
    )


@app.command()
@user_errors
def inspect(
    path: Path = typer.Argument(..., help="A D4RL .hdf5 file, a Minari dataset directory, or a .csv/.parquet table."),
):
    """Print the episode statistics of a dataset."""

    store = load_episodes(path)
    table = Table()
    table.add_column("field")
    table.add_column("value", justify="right")
    for k, v in store.summary().items():
        table.add_row(k, f"{v:.2f}" if isinstance(v, float) else str(v))
    console = Console()
    console.print(str(path), soft_wrap=True, markup=False, highlight=False)  # whole, so it can be copied
    console.print(table)


@app.command("to-minari")
@user_errors
def to_minari(
    path: Path = typer.Argument(..., help="A D4RL .hdf5 file (e.g. one made by `mmftraj data generate`)."),
    root: Path = typer.Option(Path("datasets/minari"), help="Directory that receives the Minari dataset."),
    dataset_id: str = typer.Option(None, "--id", help="Minari id, namespace/name-vN (default mmftraj/<file stem>, "
                                   "-v0 added if it has no version)."),
):
    """Export a D4RL file to a local Minari dataset (needs the optional minari extra)."""

    dataset_id = dataset_id or f"mmftraj/{path.stem}" + ("" if MINARI_ID.search(path.stem) else "-v0")
    if not MINARI_ID.fullmatch(dataset_id):  # Minari itself fails on these with a TypeError, half-way
        raise UserError(f"--id {dataset_id!r} is not a Minari id; use namespace/name-vN, e.g. mmftraj/umaze-v0")
    store = load_d4rl(path)
    target = export_minari(store, root, dataset_id)
    typer.echo(f"wrote {target} ({store.num_episodes} episodes)")


@app.command("image-subset")
@user_errors
def image_subset(
    data_dir: Path = typer.Option(..., help="CIFAR-10's python batches or class folders of PNG/JPEG images."),
    out: Path = typer.Option(..., help="New folder (parents made as needed; not inside the source): "
                             "OUT/train/<class>/*.png (+ OUT/test/), OUT/subset.json."),
    per_class: int = typer.Option(..., help="Training images per class."),
    test_per_class: int = typer.Option(0, help="Test images per class (0: no test split); the source needs a test "
                                       "split with the training split's classes and image size."),
    seed: int = typer.Option(0, help="Seed of the random choice within each class."),
):
    """Write a balanced random subset of an image data set as PNG class folders, e.g. a ~50 MB
    CIFAR-10 shard that travels to a GPU machine. Train on it with --data-dir OUT --set
    data.check_cifar10=false."""
    from .image_subset import write_subset

    check_seed(seed)
    made = write_subset(data_dir, out, per_class, test_per_class, seed, progress=True)
    counts = ", ".join(f"{n:,} {split}" for split, n in made.counts.items())
    size = f"{made.bytes / 1e6:.1f} MB" if made.bytes >= 1e6 else f"{made.bytes / 1e3:.1f} kB"
    Console().print(f"wrote {made.out} ({counts} images, {size} of PNG)", soft_wrap=True,
                    highlight=False)
