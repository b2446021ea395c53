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
from mmftraj.runs import prepare_and_train, write_results


def _cifar(tmp_path, data_dir, **kw):
    return prepare_and_train(task="cifar", device="cpu", overrides=[f"data.dir={json.dumps(str(data_dir))}"],
                             name="r", runs_dir=tmp_path, progress=False, **kw)


def test_a_run_that_never_started_does_not_block_the_retry(tmp_path):
    run = tmp_path / "cifar" / "r"
    with pytest.raises(UserError, match="missing or incomplete"):
        _cifar(tmp_path, tmp_path / "nowhere")
    assert not run.exists()  # its config.yaml, written before the data check, is removed again
    run.mkdir(parents=True)  # a folder like the one a killed start leaves: config.yaml only
    (run / "config.yaml").write_text("{}\n")
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
    ("cpu", ["train.batch_size=0", "train.lr=-1"], "train.batch_size must be at least 1, got 0; train.lr must be positive"),
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
    assert cifar.exit_code == 2 and "missing or incomplete" in cifar.output and "1e3: cifar" in cifar.output
