"""The command line: version/help, and user errors as one line with exit code 2."""

import json
import subprocess
import sys

import pytest

from mmftraj import __version__


def run(*args):
    return subprocess.run([sys.executable, "-m", "mmftraj", *args], capture_output=True, text=True)


def test_version_and_help():
    out = run("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"mmftraj {__version__}"
    helped = run("--help")
    assert helped.returncode == 0 and "train" in helped.stdout and "eval" in helped.stdout


@pytest.mark.parametrize(
    "args,expected",
    [
        (["train", "--task", "nope"], "unknown task 'nope'; valid choices: "),
        (["train", "--task", "toy2d", "--objective", "diffusion"], "valid choices: fm, meanflow, mmf, mmf-full"),
        (["train", "--task", "toy2d", "--set", "train.learning_rate=1"], "unknown config key 'train.learning_rate'"),
        (["train", "--task", "toy2d", "--set", "optim.lr=1"], "unknown config section 'optim'"),
        (["train", "--task", "toy2d", "--set", "train.steps=many"], "expected an integer"),
        (["train", "--task", "toy2d", "--preset", "spiral"], "valid choices: checkerboard"),
        (["train", "--task", "toy2d", "--config", "missing.yaml"], "config file not found"),
        (["train", "--task", "toy2d", "--maze", "umaze"], "--maze is only valid with --task maze2d"),
        (["eval", "--task", "toy2d", "--checkpoint", "no/such/run"], "checkpoint not found"),
        (["eval", "--task", "toy2d", "--checkpoint", "pyproject.toml"], "not the file pyproject.toml"),
        (["train", "--task", "digits", "--preset", "small"], "task digits has no presets"),
    ],
)
def test_user_errors_are_one_line_exit_2(args, expected, tmp_path):
    out = run(*args, *(["--runs-dir", str(tmp_path)] if args[0] == "train" else []))
    assert out.returncode == 2, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in out.stderr
    assert expected in lines[0]


def test_unknown_valid_keys_are_listed(tmp_path):
    out = run("train", "--task", "toy2d", "--set", "train.learning_rate=1", "--runs-dir", str(tmp_path))
    assert "train.lr" in out.stderr and "train.steps" in out.stderr


def test_sample_for_a_task_without_a_sampler():
    from typer.testing import CliRunner

    from mmftraj.cli import app

    result = CliRunner().invoke(app, ["sample", "--task", "toy2d", "--checkpoint", "x"])
    assert result.exit_code == 2 and "task 'toy2d' has no sampler" in result.output, result.output


@pytest.mark.parametrize("command", [["train", "--task", "toy2d"], ["eval", "--task", "maze2d", "--checkpoint", "x"],
                                     ["sample", "--task", "digits", "--checkpoint", "x"], ["fid", "--task", "digits"]])
def test_a_negative_seed_is_one_line(command):
    from typer.testing import CliRunner

    from mmftraj.cli import app

    result = CliRunner().invoke(app, [*command, "--seed", "-1"])
    assert (result.exit_code == 2
            and "--seed must be 0 to 4294967295 (2**32 - 1), got -1" in result.output), result.output


def test_pointmaze_generation_refuses_no_steps_and_a_file_as_the_folder(tmp_path):
    """--samples 0 used to fall back to the full 1e6-step run; --out FILE ended in a traceback."""
    pytest.importorskip("minari")
    out = run("data", "generate", "PointMaze_UMaze-v3", "--samples", "0", "--out", str(tmp_path / "m"))
    assert out.returncode == 2 and "--samples must be at least 2" in out.stderr and not (tmp_path / "m").exists()
    (tmp_path / "f.hdf5").write_text("mine")
    out = run("data", "generate", "PointMaze_UMaze-v3", "--samples", "10", "--out", str(tmp_path / "f.hdf5"))
    assert out.returncode == 2 and "is a file" in out.stderr and (tmp_path / "f.hdf5").read_text() == "mine"


def test_to_minari_refuses_an_id_minari_cannot_parse(tmp_path):
    out = run("data", "to-minari", str(tmp_path / "u.hdf5"), "--root", str(tmp_path / "m"), "--id", "bad")
    assert out.returncode == 2 and "is not a Minari id" in out.stderr and not (tmp_path / "m").exists()


@pytest.mark.parametrize("override,expected", [
    ("train.lr=[unclosed", "--set train.lr=[unclosed: the value '[unclosed' is"),
    ("train.lr=.inf", "train.lr must be a finite number, got inf"),
    ("train.ema_decay=.nan", "train.ema_decay must be a finite number"),
    ("objective.adaptive_c=.nan", "objective.adaptive_c must be a finite number"),
    ("train.threads=100000", "train.threads must be 0 (auto) to"),
])
def test_bad_values_are_one_line_before_any_training(override, expected, tmp_path):
    """Each of these used to be a traceback, a segfault or a run that trained on NaN (issue 20)."""
    out = run("train", "--task", "toy2d", "--steps", "2", "--set", override, "--runs-dir", str(tmp_path))
    assert out.returncode == 2, out.stderr
    assert expected in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert not (tmp_path / "toy2d").exists()


def test_broken_files_and_unwritable_outputs_are_one_line_exit_2(tmp_path):
    """Each of these was a traceback (issue 20): a runs dir under a file, a zero-step HDF5, an
    unreadable metrics.csv or hand-edited meta.json on resume, a pickled .npz given to fid."""
    import shutil

    import h5py
    import numpy as np

    def one_line(out, expected):
        assert out.returncode == 2, out.stderr
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], out.stderr

    toy = ["train", "--task", "toy2d", "--steps", "3", "--set", "train.threads=1", "--set", "eval.n_samples=64"]
    (tmp_path / "afile").write_text("x")
    one_line(run(*toy, "--runs-dir", str(tmp_path / "afile" / "sub")), "cannot write runs under")
    with h5py.File(tmp_path / "zero.hdf5", "w") as f:
        for key, shape in [("observations", (0, 4)), ("actions", (0, 2)), ("rewards", (0,)), ("terminals", (0,)),
                           ("timeouts", (0,))]:
            f.create_dataset(key, data=np.zeros(shape))
    one_line(run("train", "--task", "maze2d", "--steps", "2", "--set", f"data.path={tmp_path / 'zero.hdf5'}",
                 "--runs-dir", str(tmp_path / "r")), "holds no steps")
    runs = tmp_path / "runs"
    assert run(*toy, "--runs-dir", str(runs), "--name", "base").returncode == 0
    for name in ("m", "j"):
        shutil.copytree(runs / "toy2d" / "base", runs / "toy2d" / name)
    (runs / "toy2d" / "m" / "metrics.csv").write_bytes(b"garbage\x00\xff,,\n\"unclosed")
    one_line(run(*toy, "--steps", "5", "--runs-dir", str(runs), "--name", "m", "--resume"), "not a metrics table")
    for meta in (runs / "toy2d" / "j" / "checkpoints").glob("*/meta.json"):
        meta.write_text('{"step": "three"}')
    one_line(run(*toy, "--steps", "5", "--runs-dir", str(runs), "--name", "j", "--resume"), "is not one mmftraj wrote")
    np.savez(tmp_path / "bad.npz", samples=np.array([object()], dtype=object))
    one_line(run("fid", "--task", "digits", "--samples", str(tmp_path / "bad.npz")), "is not a samples .npz")


# -- reliability: divergence and corrupt checkpoints, through the CLI ---------------------------------
def cli(*args):
    """The CLI in this process (a fraction of a subprocess's start-up); stderr kept apart."""
    from typer.testing import CliRunner

    from mmftraj.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def toy(runs, name, *extra):
    return cli("train", "--task", "toy2d", "--runs-dir", runs, "--name", name, "--set", "train.threads=1",
               "--set", "train.batch_size=64", "--set", "eval.n_samples=64", "--set", "eval.steps=[1]", *extra)


def one_error_line(result, *expected):
    assert result.exit_code == 2, (result.output, result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.stderr
    assert all(e in lines[0] for e in expected), lines[0]
    return lines[0]


@pytest.mark.parametrize("bad", [["train.lr=1e19", "train.weight_decay=1e19"], ["train.lr=1e6"], ["train.lr=1e39"]],
                         ids=["lr1e19-wd1e19", "lr1e6", "lr1e39"])
def test_a_diverged_resume_names_the_last_good_checkpoint_and_a_sane_resume_trains_on(tmp_path, bad):
    """Each used to end badly: lr 1e19 named a checkpoint of 1e19 weights "the last good one" (a sane
    resume from it diverged at once), lr 1e6 exited 0 with a loss of 1e13, lr 1e39 was a traceback."""
    import csv
    import math

    from mmftraj.checkpoint import list_checkpoints

    run = tmp_path / "toy2d" / "d"
    assert toy(tmp_path, "d", "--steps", "20").exit_code == 0
    sets = [a for s in [*bad, "train.warmup_steps=0", "train.ckpt_every=1"] for a in ("--set", s)]
    line = one_error_line(toy(tmp_path, "d", "--steps", "30", "--resume", *sets), "training diverged at step 2",
                          f"the last good checkpoint is {run / 'checkpoints' / 'step_00000020'}")
    assert [p.name for p in list_checkpoints(run)] == ["step_00000020"]
    aside = sorted(p.name for p in (run / "checkpoints").glob("diverged_*"))
    assert all(name in line for name in aside)  # the message says what was moved
    resumed = toy(tmp_path, "d", "--steps", "30", "--resume")
    assert resumed.exit_code == 0, resumed.output
    results = json.loads((run / "results.json").read_text())
    assert results["steps"] == 30 and math.isfinite(results["final_loss"]) and results["final_loss"] < 10
    with open(run / "metrics.csv") as fh:
        assert all(math.isfinite(float(r["mse"])) and float(r["mse"]) < 10 for r in csv.DictReader(fh))


def _corrupt_an_ema_tensor(ckpt):
    """Overwrite 4 KB in the middle of the largest EMA tensor with finite bytes (float32 0.5 each)."""
    import struct

    import numpy as np

    path = ckpt / "tensors.safetensors"
    with open(path, "r+b") as fh:
        (size,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(size))
        name = max((k for k in header if k.startswith("ema/")),
                   key=lambda k: np.subtract(*header[k]["data_offsets"][::-1]))
        start, end = header[name]["data_offsets"]
        assert end - start >= 3 * 4096
        fh.seek(8 + size + (start + end) // 2 - 2048)
        fh.write(np.full(1024, 0.5, dtype=np.float32).tobytes())


def test_a_corrupt_checkpoint_is_one_line_for_eval_and_resume(tmp_path):
    """Finite garbage in a checkpoint used to evaluate (and resume) as if nothing were wrong."""
    run = tmp_path / "toy2d" / "c"
    assert toy(tmp_path, "c", "--steps", "5").exit_code == 0
    ckpt = run / "checkpoints" / "step_00000005"
    _corrupt_an_ema_tensor(ckpt)
    expected = f"checkpoint {ckpt} is corrupt: its tensors do not match the checksum saved with them"
    one_error_line(cli("eval", "--task", "toy2d", "--checkpoint", run, "--threads", "1"), expected)
    one_error_line(toy(tmp_path, "c", "--steps", "8", "--resume"), expected)


def test_a_checkpoint_without_a_checksum_still_loads(tmp_path):
    from mmftraj.checkpoint import load_checkpoint

    run = tmp_path / "toy2d" / "old"
    assert toy(tmp_path, "old", "--steps", "3").exit_code == 0
    meta_path = run / "checkpoints" / "step_00000003" / "meta.json"
    meta = json.loads(meta_path.read_text())
    del meta["tensors_sha256"], meta["loss_median"], meta["meta_sha256"]  # as written before these were stored
    meta_path.write_text(json.dumps(meta))
    assert load_checkpoint(run)[1]["step"] == 3
    assert toy(tmp_path, "old", "--steps", "5", "--resume").exit_code == 0


def test_a_changed_value_in_meta_json_is_refused_by_eval_and_resume(tmp_path):
    """meta.json had no checksum: one changed digit of its config (lr 0.001 -> 0.003) resumed with
    that lr and exit 0. Now its own sha256 is stored in it; the key order and spacing do not count."""
    run = tmp_path / "toy2d" / "r"
    assert toy(tmp_path, "r", "--steps", "3").exit_code == 0
    meta_path = run / "checkpoints" / "step_00000003" / "meta.json"
    text = meta_path.read_text()
    meta = json.loads(text)
    meta_path.write_text(json.dumps(dict(reversed(meta.items())), indent=3))  # the same content, another layout
    assert cli("eval", "--task", "toy2d", "--checkpoint", run, "--out", tmp_path / "e").exit_code == 0
    assert '"lr": 0.001,' in text
    meta_path.write_text(text.replace('"lr": 0.001,', '"lr": 0.003,', 1))
    one_error_line(cli("eval", "--task", "toy2d", "--checkpoint", run, "--out", tmp_path / "e2"),
                   "is corrupt: its meta.json does not match the checksum saved in it")
    one_error_line(toy(tmp_path, "r", "--steps", "5", "--resume"), "is corrupt: its meta.json does not match")
    assert json.loads((run / "results.json").read_text())["steps"] == 3


# -- reliability, part 2 -------------------------------------------------------------------------
def test_eval_refuses_more_threads_than_train_allows(tmp_path):
    """torch aborted the process (exit 134) on --threads 100000; train has refused it all along."""
    out = run("eval", "--task", "toy2d", "--checkpoint", str(tmp_path), "--threads", "100000")
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "--threads must be 0 (auto) to" in out.stderr


BIG = str(2**64)


@pytest.mark.parametrize("args,expected", [
    (["train", "--task", "toy2d", "--seed", BIG], "--seed must be 0 to 4294967295"),
    (["train", "--task", "toy2d", "--set", "train.seed=-1"], "train.seed must be 0 to 4294967295"),
    (["eval", "--task", "toy2d", "--checkpoint", "RUNS", "--seed", BIG], "--seed must be 0 to"),
    (["data", "generate", "maze2d-umaze-v1", "--samples", "100", "--seed", "-1", "--out", "RUNS/m.hdf5"],
     "--seed must be 0 to"),
    (["data", "image-subset", "--data-dir", "RUNS", "--out", "OUT", "--per-class", "1", "--seed", "-1"],
     "--seed must be 0 to"),
    (["train", "--task", "toy2d", "--set", "model.hidden=-3"], "model.hidden must be at least 1, got -3"),
    (["train", "--task", "toy2d", "--set", "model.hidden=0"], "model.hidden must be at least 1, got 0"),
    (["train", "--task", "toy2d", "--set", "eval.steps=[]"], "eval.steps must list sampling step counts"),
    (["train", "--task", "toy2d", "--set", "eval.steps=[-1]"], "eval.steps must list sampling step counts"),
    (["train", "--task", "toy2d", "--set", "eval.n_samples=-4"], "eval.n_samples and eval.projections must be"),
    (["train", "--task", "toy2d", "--set", "objective.lambda_warmup=-5"], "objective.lambda_warmup must be 0 or more"),
    (["train", "--task", "toy2d", "--set", "objective.adaptive_c=-1"], "objective.adaptive_c must be positive"),
    (["sample", "--task", "digits", "--checkpoint", "RUNS", "--n", "100000000000"], "--n must be 1 to 100000"),
])
def test_bad_values_are_one_line_before_any_work(args, expected, tmp_path):
    """Each was a traceback, or (eval.steps=[-1], lambda_warmup=-5) a run trained in full first."""
    args = [a.replace("RUNS", str(tmp_path)).replace("OUT", str(tmp_path.parent / f"{tmp_path.name}-out"))
            for a in args]
    extra = ["--runs-dir", tmp_path, "--steps", "2"] if args[0] == "train" else []
    one_error_line(cli(*args, *extra), expected)
    assert not (tmp_path / "toy2d").exists() and not (tmp_path / "m.hdf5").exists()


def test_a_metrics_or_results_folder_is_refused_before_resuming(tmp_path):
    run = tmp_path / "toy2d" / "r"
    assert toy(tmp_path, "r", "--steps", "2").exit_code == 0
    for name in ("metrics.csv", "results.json"):
        kept = run / f"{name}.kept"
        (run / name).rename(kept)
        (run / name).mkdir()
        one_error_line(toy(tmp_path, "r", "--steps", "3", "--resume"), f"{name} is a folder")
        (run / name).rmdir()
        kept.rename(run / name)
    assert toy(tmp_path, "r", "--steps", "3", "--resume").exit_code == 0


@pytest.mark.parametrize("edit,expected", [({"task": "digits"}, "belongs to task 'digits', not 'toy2d'"),
                                           ({"step": 1e30}, "is not one mmftraj wrote (step 1e+30)")])
def test_a_checkpoint_of_another_task_or_a_float_step_is_refused_on_resume(tmp_path, edit, expected):
    """A meta.json saying task: digits in a toy2d run used to resume as if it were toy2d's."""
    run = tmp_path / "toy2d" / "r"
    assert toy(tmp_path, "r", "--steps", "2").exit_code == 0
    meta_path = run / "checkpoints" / "step_00000002" / "meta.json"
    meta = {k: v for k, v in json.loads(meta_path.read_text()).items() if k != "meta_sha256"}  # no checksum yet
    meta_path.write_text(json.dumps({**meta, **edit}))
    one_error_line(toy(tmp_path, "r", "--steps", "4", "--resume"), expected)


def test_failed_starts_leave_no_lock_files(tmp_path):
    """A start that diverged before its first checkpoint (its folder cleaned up) used to leave
    .<name>.lock beside the runs; a run that exists keeps its own."""
    one_error_line(toy(tmp_path, "d", "--steps", "5", "--set", "train.lr=1e6", "--set", "train.warmup_steps=0"),
                   "training diverged")
    assert toy(tmp_path, "ok", "--steps", "2").exit_code == 0
    assert sorted(p.name for p in (tmp_path / "toy2d").iterdir()) == [".ok.lock", "ok"]


def test_a_lock_file_removed_between_open_and_flock_is_not_trusted(tmp_path, monkeypatch):
    """Its previous holder may remove the file after we open it: the lock we then get is on a
    file no longer at the path, so locked() opens and locks the file there instead."""
    import fcntl
    import os

    from mmftraj import run_folders

    path = tmp_path / ".r.lock"
    real_flock, calls = fcntl.flock, []

    def flock_after_removal(fd, op):
        calls.append(fd)
        if len(calls) == 1:
            path.unlink()  # the previous holder's clean-up, just before our flock
        return real_flock(fd, op)

    monkeypatch.setattr(run_folders.fcntl, "flock", flock_after_removal)
    (tmp_path / "r").mkdir()
    with run_folders.locked(tmp_path / "r"):
        assert len(calls) == 2 and path.read_text() == str(os.getpid())


@pytest.fixture
def read_only(monkeypatch):
    """Make folders read-only: chmod 0o555, or, as root (whom permissions do not stop), refuse
    every creation, rename and write-mode open under them as the kernel would (EACCES)."""
    import builtins
    import errno
    import os
    from pathlib import Path

    folders = []
    if os.geteuid() == 0:
        def inside(path) -> bool:
            try:
                path = Path(os.fsdecode(path)).absolute()
            except TypeError:  # a file descriptor
                return False
            return any(path == f or f in path.parents for f in folders)

        def refuse(path):
            raise PermissionError(errno.EACCES, "Permission denied", os.fsdecode(path))

        def guard(real, writes=lambda *a, **k: True, *, at=0):
            def wrapped(*args, **kwargs):
                if writes(*args, **kwargs) and inside(args[at]):
                    refuse(args[at])
                return real(*args, **kwargs)
            return wrapped

        write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
        monkeypatch.setattr(os, "open", guard(os.open, lambda p, flags, *a, **k: flags & write_flags))
        monkeypatch.setattr(builtins, "open",
                            guard(builtins.open, lambda f, mode="r", *a, **k: set(mode) & set("wax+")))
        for name in ("mkdir", "unlink", "rmdir", "chmod"):
            monkeypatch.setattr(os, name, guard(getattr(os, name)))
        for name in ("replace", "rename"):
            monkeypatch.setattr(os, name, guard(guard(getattr(os, name)), at=1))

    def make(folder):
        folders.append(Path(folder).absolute())
        if os.geteuid() != 0:
            os.chmod(folder, 0o555)
        return folder

    yield make
    if os.geteuid() != 0:
        for folder in folders:
            os.chmod(folder, 0o755)


def test_read_only_outputs_are_one_line_exit_2(tmp_path, read_only):
    """Each was a traceback: resuming or overwriting a read-only run, eval into its read-only run
    folder or --out, sample --out read-only, data generate --out in a read-only folder."""
    run = tmp_path / "toy2d" / "r"
    assert toy(tmp_path, "r", "--steps", "2").exit_code == 0
    (tmp_path / "ro").mkdir()
    read_only(run)
    read_only(run / "checkpoints")
    read_only(tmp_path / "ro")
    writable = "choose a writable"
    one_error_line(toy(tmp_path, "r", "--steps", "3", "--resume"), f"cannot write to {run}: permission denied",
                   writable)
    one_error_line(toy(tmp_path, "r", "--steps", "3", "--overwrite"), f"cannot write to {run}", writable)
    one_error_line(cli("eval", "--task", "toy2d", "--checkpoint", run, "--threads", "1"), f"cannot write to {run}",
                   "--out")
    one_error_line(cli("eval", "--task", "toy2d", "--checkpoint", run, "--threads", "1", "--out", tmp_path / "ro"),
                   f"cannot write to {tmp_path / 'ro'}: permission denied")
    one_error_line(cli("sample", "--task", "digits", "--checkpoint", run, "--out", tmp_path / "ro" / "s"),
                   f"cannot write to {tmp_path / 'ro'}", "--out")
    one_error_line(cli("data", "generate", "maze2d-umaze-v1", "--samples", "100", "--out", tmp_path / "ro" / "m.hdf5"),
                   f"cannot write to {tmp_path / 'ro'}", "--out folder")
    assert sorted(p.name for p in (tmp_path / "ro").iterdir()) == []


def test_a_full_disk_during_a_checkpoint_save_is_one_line_keeping_the_earlier_ones(tmp_path, monkeypatch):
    import errno

    from mmftraj import checkpoint
    from mmftraj.checkpoint import list_checkpoints, load_checkpoint

    real, saves = checkpoint.save_file, []

    def fills_the_disk(tensors, path):
        saves.append(path)
        if len(saves) == 2:
            real(tensors, path)  # half a file, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device", path)
        return real(tensors, path)

    monkeypatch.setattr(checkpoint, "save_file", fills_the_disk)
    run = tmp_path / "toy2d" / "f"
    one_error_line(toy(tmp_path, "f", "--steps", "6", "--set", "train.ckpt_every=2"),
                   f"cannot write to {run / 'checkpoints'}: no space left on device; free some space",
                   "checkpoint step 4 was not saved, the ones before it are intact")
    assert [p.name for p in list_checkpoints(run)] == ["step_00000002"]
    assert load_checkpoint(run)[1]["step"] == 2
    assert not list((run / "checkpoints").glob(".step_*"))


@pytest.mark.parametrize("kind,expected", [("external", "keeps its data outside the file (external storage)"),
                                           ("virtual", "keeps its data outside the file (a virtual layout)"),
                                           ("bytes", "holds |S2 values, not numbers"),
                                           ("huge", "GB, more than half this machine's memory")])
def test_hdf5_data_outside_the_file_or_of_the_wrong_kind_is_one_line(tmp_path, kind, expected):
    """External storage read a file the dataset named (here a stand-in for a system file); byte
    strings and a declared (1e10, 4) dataset were tracebacks."""
    import h5py
    import numpy as np

    outside = tmp_path / "system-file"
    outside.write_bytes(np.arange(40, dtype="f8").tobytes())
    path = tmp_path / "d.hdf5"
    with h5py.File(path, "w") as f:
        for key, shape in [("actions", (10, 2)), ("rewards", (10,)), ("terminals", (10,)), ("timeouts", (10,))]:
            f.create_dataset(key, data=np.zeros(shape))
        if kind == "external":
            f.create_dataset("observations", shape=(10, 4), dtype="f8", external=[(str(outside), 0, 320)])
        elif kind == "virtual":
            with h5py.File(tmp_path / "src.hdf5", "w") as src:
                src.create_dataset("x", data=np.zeros((10, 4)))
            layout = h5py.VirtualLayout(shape=(10, 4), dtype="f8")
            layout[:] = h5py.VirtualSource(str(tmp_path / "src.hdf5"), "x", shape=(10, 4))
            f.create_virtual_dataset("observations", layout)
        elif kind == "bytes":
            f.create_dataset("observations", data=np.array([[b"ab"] * 4] * 10))
        else:
            f.create_dataset("observations", shape=(10**10, 4), dtype="f4", chunks=(1024, 4))
    assert path.stat().st_size < 100_000
    one_error_line(cli("data", "inspect", path), expected)


@pytest.mark.parametrize("task,setting,expected", [
    ("maze2d", "eval.episodes=0", "eval.episodes must be at least 1, got 0"),
    ("maze2d", "eval.fm_steps=0", "eval.fm_steps must be at least 1, got 0"),
    ("maze2d", "eval.candidates=0", "eval.candidates must be at least 1, got 0"),
    ("maze2d", "eval.train_episodes=-1", "eval.train_episodes must be at least 0, got -1"),
    ("maze2d", "eval.goal_radius=0", "eval.goal_radius must be positive, got 0"),
    ("motion", "eval.steps=[]", "eval.steps must list sampling step counts"),
    ("motion", "eval.seed=-1", "eval.seed must be 0 to"),
    ("motion", "eval.n_samples=0", "eval.n_samples and eval.projections must be at least 1"),
    ("digits", "eval.steps=[0]", "eval.steps must list sampling step counts"),
    ("digits", "eval.n_samples=-1", "eval.n_samples must be at least 0 (0: no evaluation after training)"),
    ("digits", "eval.batch=0", "eval.batch must be at least 1, got 0"),
    ("cifar", "eval.n_samples=0", "eval.n_samples must be at least 1, got 0"),
    ("cifar", "eval.classifier_epochs=0", "eval.classifier_epochs must be at least 1"),
])
def test_eval_values_of_every_task_are_refused_before_a_run_folder_exists(tmp_path, task, setting, expected):
    """Only toy2d checked its eval.* before training: the others trained, then failed (or, for a
    report cell or a `--resume`, left a half-made run)."""
    one_error_line(cli("train", "--task", task, "--steps", "1", "--runs-dir", tmp_path, "--set", setting), expected)
    assert list(tmp_path.iterdir()) == []
