"""Run folders: a failed start never blocks the corrected command, errors come before any folder
is made, and results/checkpoints are ordinary readable files."""

import json
import os
import stat

import pytest
import torch

from mmftraj.checkpoint import save_checkpoint
from mmftraj.errors import UserError
from mmftraj.io import atomic_write_text
from mmftraj.run_folders import MARKER
from mmftraj.runs import prepare_and_train, write_results


def _cifar(tmp_path, data_dir, **kw):
    return prepare_and_train(task="cifar", device="cpu", overrides=[f"data.dir={json.dumps(str(data_dir))}"],
                             name="r", runs_dir=tmp_path, progress=False, **kw)


def test_a_run_that_never_started_does_not_block_the_retry(tmp_path):
    run = tmp_path / "cifar" / "r"
    with pytest.raises(UserError, match="nowhere does not exist"):
        _cifar(tmp_path, tmp_path / "nowhere")
    assert not run.exists()  # its config.yaml, written before the data check, is removed again
    run.mkdir(parents=True)  # a folder like the one a killed start leaves: marker and config.yaml only
    (run / "config.yaml").write_text("{}\n")
    (run / MARKER).write_text('{"created_by": "mmftraj"}\n')
    for kw in ({}, {"resume": True}):  # a new data path, with or without --resume, is a fresh start
        with pytest.raises(UserError) as err:
            _cifar(tmp_path, tmp_path / "elsewhere", **kw)
        assert "already exists" not in str(err.value) and "--resume keeps" not in str(err.value)
        assert "elsewhere" in str(err.value)


def test_a_started_run_still_needs_resume_or_overwrite(tmp_path):
    run = tmp_path / "cifar" / "r"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("{}\n")
    (run / "metrics.csv").write_text("step,loss\n1,0.5\n")
    with pytest.raises(UserError, match="already exists"):
        _cifar(tmp_path, tmp_path / "nowhere")


@pytest.mark.parametrize("device,overrides,message", [
    ("gpu", [], "--device 'gpu' is not a device"),
    (None, ["train.device=mps"], "--set train.device 'mps': mmftraj runs on cpu or cuda"),
    ("cpu", ["train.batch_size=0", "train.lr=-1"],
     "train.batch_size must be at least 1, got 0; train.lr must be positive"),
])
def test_bad_devices_and_train_values_fail_before_a_run_folder_exists(tmp_path, device, overrides, message):
    with pytest.raises(UserError) as err:
        prepare_and_train(task="toy2d", device=device, overrides=overrides, runs_dir=tmp_path, progress=False)
    assert message in str(err.value)
    assert not (tmp_path / "toy2d").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA GPU")
def test_the_cuda_error_names_where_the_device_came_from(tmp_path):
    with pytest.raises(UserError, match=r"train.device \(the cifar task's default\) is 'cuda'"):
        prepare_and_train(task="cifar", runs_dir=tmp_path, progress=False)
    with pytest.raises(UserError, match="^--device is 'cuda:1'"):
        prepare_and_train(task="toy2d", device="cuda:1", runs_dir=tmp_path, progress=False)


def test_results_json_is_strict_json(tmp_path):
    write_results(tmp_path, {"final_loss": float("nan"), "scores": [1.0, float("inf")], "ok": {"x": 2.5}})

    def refuse(constant):
        raise ValueError(constant)

    data = json.loads((tmp_path / "results.json").read_text(), parse_constant=refuse)
    assert data == {"final_loss": None, "scores": [1.0, None], "ok": {"x": 2.5}}


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_written_files_and_checkpoints_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "results.json", "{}\n")
        ckpt = save_checkpoint(tmp_path, 3, torch.nn.Linear(2, 2), meta={"task": "test"})
    finally:
        os.umask(old)
    assert _mode(tmp_path / "results.json") == 0o644
    assert _mode(ckpt) == 0o755
    assert {_mode(f) for f in ckpt.iterdir()} == {0o644}


def test_train_takes_data_dir_for_cifar_only(tmp_path):
    from typer.testing import CliRunner

    from mmftraj.cli import app

    runner = CliRunner()
    other = runner.invoke(app, ["train", "--task", "toy2d", "--data-dir", "x", "--runs-dir", str(tmp_path)])
    assert other.exit_code == 2 and "--data-dir is for --task cifar" in other.output
    odd = tmp_path / "1e3: cifar"  # a name YAML would read as a number or a mapping stays a path
    cifar = runner.invoke(app, ["train", "--task", "cifar", "--device", "cpu", "--data-dir", str(odd),
                                "--runs-dir", str(tmp_path)])
    assert cifar.exit_code == 2 and "does not exist" in cifar.output and "1e3: cifar" in cifar.output


# -- run names are never paths; only folders mmftraj made are ever deleted ----------------------------
def _toy(tmp_path, runs_dir, **kw):
    return prepare_and_train(task="toy2d", steps=2, overrides=["eval.n_samples=64", "train.threads=1"],
                             runs_dir=runs_dir, progress=False, **kw)


def _user_folder(path):
    path.mkdir(parents=True, exist_ok=True)
    (path / "thesis.tex").write_text("years of work\n")
    return path


@pytest.mark.parametrize("name", ["..", "../..", ".", "a/b", "/abs/dir", "", "a\\b", "x" * 201, "naïve"])
def test_a_run_name_that_is_a_path_is_refused_and_nothing_is_deleted(tmp_path, name):
    runs = tmp_path / "p" / "runs"
    thesis = _user_folder(tmp_path / "p")
    with pytest.raises(UserError, match="not a run name|is empty"):
        _toy(tmp_path, runs, name=name, overwrite=True)
    assert (thesis / "thesis.tex").read_text() == "years of work\n"


def test_overwrite_deletes_only_a_folder_mmftraj_made(tmp_path):
    mine = _user_folder(tmp_path / "toy2d" / "mine")  # a folder the user put where a run would go
    with pytest.raises(UserError, match="mmftraj did not create it"):
        _toy(tmp_path, tmp_path, name="mine", overwrite=True)
    assert (mine / "thesis.tex").exists()
    (mine / "thesis.tex").unlink()
    (mine / "config.yaml").write_text("{}\n")  # a folder holding only a config.yaml is not silently replaced
    with pytest.raises(UserError, match="already exists"):
        _toy(tmp_path, tmp_path, name="mine")
    assert (mine / "config.yaml").read_text() == "{}\n"


def test_overwrite_replaces_mmftrajs_own_run_and_refuses_links(tmp_path):
    _toy(tmp_path, tmp_path, name="r")
    run = tmp_path / "toy2d" / "r"
    assert (run / MARKER).is_file() and (run / "results.json").is_file()
    (run / "extra.txt").write_text("from the first run\n")
    _toy(tmp_path, tmp_path, name="r", overwrite=True)
    assert not (run / "extra.txt").exists() and (run / "results.json").is_file()
    target = _user_folder(tmp_path / "elsewhere")
    (target / MARKER).write_text('{"created_by": "mmftraj"}\n')  # even a marked folder behind a link
    (tmp_path / "toy2d" / "link").symlink_to(target)
    with pytest.raises(UserError):
        _toy(tmp_path, tmp_path, name="link", overwrite=True)
    assert (target / "thesis.tex").exists()


def test_the_cli_refuses_path_names_with_one_line(tmp_path):
    import subprocess
    import sys

    thesis = _user_folder(tmp_path / "p")
    out = subprocess.run([sys.executable, "-m", "mmftraj", "train", "--task", "toy2d", "--steps", "2",
                          "--name", "../..", "--overwrite"], cwd=thesis, capture_output=True, text=True)
    assert out.returncode == 2 and "not a run name" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert (thesis / "thesis.tex").exists() and not (thesis / "runs").exists()


def test_a_run_in_use_by_another_process_is_refused(tmp_path):
    """Two processes with one run name: the second gets one line naming the first's PID; the lock
    goes with its holder (here a child process that exits), so nothing stale blocks the retry."""
    import subprocess
    import sys

    from mmftraj.run_folders import locked

    run = tmp_path / "toy2d" / "busy"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from mmftraj.run_folders import locked\n"
        f"with locked(Path({str(run)!r})):\n    print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(UserError, match=f"in use by process {holder.pid}"):
            _toy(tmp_path, tmp_path, name="busy")
        assert not run.exists()
    finally:
        holder.kill()
        holder.wait()
    with locked(run):  # the dead holder's lock is gone
        pass
    _toy(tmp_path, tmp_path, name="busy")
    assert (run / "results.json").is_file()


def test_resume_trusts_the_checkpoint_not_a_hand_edited_config(tmp_path):
    """Emptying config.yaml used to make --resume continue an fm / two_moons run as mmf /
    checkerboard with exit 0; now a config.yaml that disagrees with the checkpoint is refused,
    and a missing one is rebuilt from the checkpoint (issue 20)."""
    def run(**kw):
        return prepare_and_train(task="toy2d", preset="two_moons", objective="fm", name="r", runs_dir=tmp_path,
                                 progress=False, overrides=["eval.n_samples=64", "train.threads=1"], **kw)

    run(steps=4)
    saved = tmp_path / "toy2d" / "r" / "config.yaml"
    good = saved.read_text()
    saved.write_text("")
    with pytest.raises(UserError, match=r"disagrees with the run's checkpoint step_00000004 on objective.variant"):
        prepare_and_train(task="toy2d", name="r", runs_dir=tmp_path, progress=False, resume=True, steps=6)
    saved.write_bytes(b"\xff\xfe not utf-8")
    with pytest.raises(UserError, match="not UTF-8"):
        prepare_and_train(task="toy2d", name="r", runs_dir=tmp_path, progress=False, resume=True, steps=6)
    saved.unlink()
    results = run(steps=6, resume=True)
    assert results["objective"] == "fm" and results["distribution"] == "two_moons" and results["steps"] == 6
    assert saved.read_text() == good.replace("steps: 4", "steps: 6")


# -- --resume's edges and symbolic links, through the CLI ---------------------------------------------
def _cli(*args):
    from typer.testing import CliRunner

    from mmftraj.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def _train(runs, name, *extra):
    return _cli("train", "--task", "toy2d", "--runs-dir", runs, "--name", name, "--set", "train.threads=1",
                "--set", "train.batch_size=64", "--set", "eval.n_samples=64", "--set", "eval.steps=[1]", *extra)


def _refused(result, *expected):
    assert result.exit_code == 2, (result.output, result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and all(e in lines[0] for e in expected), result.stderr
    return lines[0]


def test_resume_and_overwrite_together_are_refused_before_anything_is_deleted(tmp_path):
    """Together they used to delete the run and train a new one from step 0."""
    assert _train(tmp_path, "r", "--steps", "3").exit_code == 0
    run = tmp_path / "toy2d" / "r"
    before = sorted(p.name for p in run.rglob("*"))
    _refused(_train(tmp_path, "r", "--steps", "5", "--resume", "--overwrite"), "--resume", "--overwrite", "not both")
    assert sorted(p.name for p in run.rglob("*")) == before
    assert json.loads((run / "results.json").read_text())["steps"] == 3


def test_resume_of_a_run_that_does_not_exist_names_the_runs_there(tmp_path):
    """It used to start a new run at step 0 under the mistyped name."""
    line = _refused(_train(tmp_path, "typo", "--steps", "3", "--resume"), str(tmp_path / "toy2d" / "typo"),
                    "drop --resume")
    assert "no runs under" in line
    assert _train(tmp_path, "alpha", "--steps", "2").exit_code == 0
    assert _train(tmp_path, "beta", "--steps", "2").exit_code == 0
    line = _refused(_train(tmp_path, "typo", "--steps", "3", "--resume"), "there is no run", "alpha, beta",
                    "drop --resume")
    assert not (tmp_path / "toy2d" / "typo").exists() and not (tmp_path / "toy2d" / ".typo.lock").exists()


def test_resume_still_means_resume_if_there_for_library_callers_and_a_never_trained_run(tmp_path):
    """Reports and benchmarks call prepare_and_train(resume=True) on runs that may not exist yet; a
    folder an earlier start left before its first step counts as existing and starts afresh."""
    assert _toy(tmp_path, tmp_path, name="fresh", resume=True)["steps"] == 2
    run = tmp_path / "toy2d" / "never"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("{}\n")
    (run / MARKER).write_text('{"created_by": "mmftraj"}\n')
    assert _train(tmp_path, "never", "--steps", "2", "--resume").exit_code == 0
    assert json.loads((run / "results.json").read_text())["steps"] == 2


def test_a_symlinked_lock_file_is_refused_and_its_target_untouched(tmp_path):
    """The lock used to be opened through the link and its target truncated to the holder's PID."""
    target = tmp_path / "precious.txt"
    target.write_text("precious contents\n")
    (tmp_path / "runs" / "toy2d").mkdir(parents=True)
    (tmp_path / "runs" / "toy2d" / ".x.lock").symlink_to(target)
    _refused(_train(tmp_path / "runs", "x", "--steps", "2"), ".x.lock", "symbolic link")
    assert target.read_text() == "precious contents\n" and not (tmp_path / "runs" / "toy2d" / "x").exists()


@pytest.mark.parametrize("name", ["metrics.csv", "checkpoints", "config.yaml", "results.json", MARKER])
def test_resume_refuses_a_run_whose_files_are_symbolic_links(tmp_path, name):
    """A linked metrics.csv used to be rewritten and appended to through the link, a linked
    checkpoints folder written into and rotated (old checkpoints deleted inside the target)."""
    import shutil

    assert _train(tmp_path / "runs", "r", "--steps", "3").exit_code == 0
    run = tmp_path / "runs" / "toy2d" / "r"
    target = tmp_path / f"elsewhere-{name}"
    shutil.move(run / name, target)
    (run / name).symlink_to(target)

    def snapshot():
        files = sorted(target.rglob("*")) if target.is_dir() else [target]
        return [(p.relative_to(tmp_path), p.read_bytes() if p.is_file() else None) for p in files]

    before = snapshot()
    _refused(_train(tmp_path / "runs", "r", "--steps", "6", "--resume"), f"{name} is a symbolic link")
    assert snapshot() == before


def test_a_default_named_run_that_exists_says_which_fields_differ(tmp_path):
    """`--set` is not part of a default name: a second command with other values used to get only
    "already exists", leaving the user to guess it meant the first command's run."""
    base = ["train", "--task", "toy2d", "--steps", "2", "--runs-dir", tmp_path, "--set", "train.threads=1",
            "--set", "eval.n_samples=64"]
    assert _cli(*base).exit_code == 0
    line = _refused(_cli(*base, "--set", "data.size=500", "--set", "train.lr=0.01"),
                    f"run {tmp_path / 'toy2d' / 'mmf-checkerboard-s0'} already exists and was trained with",
                    "data.size=0 (this command: 500)", "train.lr=0.001 (this command: 0.01)",
                    "give this run its own --name, or --resume/--overwrite that one")
    assert "eval." not in line
    _refused(_cli(*base), "already exists; pass --resume to continue it")  # the same command: nothing differs
