"""`mmftraj fid` and `mmftraj sample`: defaults, cheap checks before expensive passes, devices, file names."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from test_cifar_data import write_cifar_dir
from typer.testing import CliRunner

from mmftraj.cli import app
from mmftraj.errors import UserError
from mmftraj.evaluation.digits_features import VERSION, DigitsClassifier
from mmftraj.evaluation.inception import load_inception
from mmftraj.experiments import fid

runner = CliRunner()
NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA GPU")
TINY = ["model.model_channels=16", "model.groups=4", "model.channels_per_head=16", "train.batch_size=16",
        "train.log_every=1"]


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """A 2-step digits run whose training evaluated 40 samples (seed 7, batch 16). Its classifier is an
    untrained one in a private cache: any fixed feature network serves, and nothing trains the real one."""
    from mmftraj.runs import prepare_and_train

    cache, runs = tmp_path_factory.mktemp("cache"), tmp_path_factory.mktemp("runs")
    torch.manual_seed(0)
    save_file(DigitsClassifier().state_dict(), str(cache / f"digits_classifier_v{VERSION}.safetensors"))
    (cache / f"digits_classifier_v{VERSION}.json").write_text(json.dumps({"val_accuracy": 0.0}))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MMFTRAJ_CACHE", str(cache))
        overrides = TINY + ["eval.n_samples=40", "eval.steps=[1]", "eval.batch=16", "eval.seed=7"]
        prepare_and_train("digits", overrides=overrides, steps=2, runs_dir=runs, name="tiny", progress=False)
        yield runs / "digits" / "tiny"


def _npz(path, shape):
    np.savez(path, samples=np.zeros(shape, np.float32))
    return path


def test_fid_digits_defaults_reproduce_results_json(digits_run):
    results = json.loads((digits_run / "results.json").read_text())
    scored = fid.compute_fid("digits", digits_run)
    assert (scored["n"], scored["seed"]) == (40, 7)
    assert scored["fid"] == results["fd"]["1-step"]
    result = runner.invoke(app, ["fid", "--task", "digits", "--checkpoint", str(digits_run)])
    assert result.exit_code == 0 and "fid" in result.output, result.output


def test_default_n_and_seed():
    from mmftraj.tasks.digits import Config

    cfg = Config()
    cfg.eval.n_samples, cfg.eval.seed = 0, 5  # a run that switched its evaluation off
    assert fid.default_n_seed("digits", cfg, None, None) == (1797, 5)
    assert fid.default_n_seed("digits", cfg, 10, 3) == (10, 3)
    assert fid.default_n_seed("cifar", cfg, None, None) == (50000, 0)


def test_fid_cifar_checks_cheap_things_before_expensive_passes(digits_run, tmp_path, monkeypatch):
    import mmftraj.tasks.cifar  # noqa: F401  imported now, so it binds the real `generate`, not the patch

    def expensive(*args, **kwargs):
        raise AssertionError("an expensive pass ran before the cheap checks")

    write_cifar_dir(tmp_path / "data")
    (tmp_path / "w.pth").write_bytes(b"stand-in")
    monkeypatch.setenv("MMFTRAJ_CACHE", str(tmp_path / "cache"))  # no cached reference statistics
    monkeypatch.setattr(fid, "load_inception", lambda *a, **k: lambda x: x.flatten(1)[:, :4])
    monkeypatch.setattr(fid, "_features", expensive)
    monkeypatch.setattr(fid, "generate", expensive)
    inputs = {"data_dir": tmp_path / "data", "weights": tmp_path / "w.pth"}
    with pytest.raises(UserError, match="belongs to task 'digits', not 'cifar'"):
        fid.compute_fid("cifar", checkpoint=digits_run, **inputs)
    with pytest.raises(UserError, match=r"must have shape \(N, 3, 32, 32\), got \(4, 1, 8, 8\)"):
        fid.compute_fid("cifar", samples_file=_npz(tmp_path / "digits.npz", (4, 1, 8, 8)), **inputs)
    with pytest.raises(UserError, match="at least 2 samples"):
        fid.compute_fid("cifar", samples_file=_npz(tmp_path / "one.npz", (1, 3, 32, 32)), **inputs)
    with pytest.raises(UserError, match="samples file not found"):
        fid.compute_fid("cifar", samples_file=tmp_path / "absent.npz", **inputs)
    with pytest.raises(UserError, match="at least 2 samples"):
        fid.compute_fid("digits", checkpoint=digits_run, n=1)


def test_fid_validates_device_and_refuses_cifar_options_for_digits(digits_run, tmp_path):
    base = ["fid", "--task", "digits", "--checkpoint", str(digits_run)]
    for extra, message in [(["--device", "nope"], "is not a device"),
                           (["--weights", str(tmp_path)], "--weights/--data-dir are for cifar"),
                           (["--data-dir", str(tmp_path)], "--weights/--data-dir are for cifar")]:
        result = runner.invoke(app, base + extra)
        assert result.exit_code == 2 and message in result.output, result.output
    result = runner.invoke(app, ["fid", "--task", "cifar", "--samples", "x.npz", "--device", "meta"])
    assert result.exit_code == 2 and "runs on cpu or cuda" in result.output, result.output


@NO_GPU
def test_fid_and_sample_refuse_cuda_without_a_gpu(digits_run, tmp_path):
    for command in (["fid", "--task", "digits"], ["sample", "--task", "digits", "--out", str(tmp_path)]):
        result = runner.invoke(app, command + ["--checkpoint", str(digits_run), "--device", "cuda"])
        assert result.exit_code == 2 and "no CUDA GPU" in result.output, result.output
    assert not list(tmp_path.iterdir())


def test_corrupt_inception_weights_are_one_clear_line(tmp_path):
    path = tmp_path / "broken.pth"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(UserError) as caught:
        load_inception(path)
    message = str(caught.value)
    assert message.startswith(f"could not read Inception weights {path}: ") and "\n" not in message
    assert "weights_only" not in message and "arbitrary code" not in message


def test_sample_names_files_after_the_run(digits_run, tmp_path):
    variant = json.loads((digits_run / "results.json").read_text())["objective"]
    step_dir = sorted((digits_run / "checkpoints").glob("step_*"))[-1]
    for checkpoint in (digits_run, step_dir):  # a checkpoints/step_* path names its run too
        out = tmp_path / checkpoint.name
        result = runner.invoke(app, ["sample", "--task", "digits", "--checkpoint", str(checkpoint), "--n", "3",
                                     "--steps", "2", "--out", str(out), "--device", "cpu"])
        assert result.exit_code == 0, result.output
        assert sorted(p.name for p in out.iterdir()) == [f"digits-tiny-{variant}-2step-s0.{ext}"
                                                          for ext in ("npz", "png")]


def test_sample_checks_out_and_device(digits_run, tmp_path):
    (tmp_path / "taken").write_text("")
    base = ["sample", "--task", "digits", "--checkpoint", str(digits_run)]
    result = runner.invoke(app, base + ["--out", str(tmp_path / "taken")])
    assert result.exit_code == 2 and "is a file; give a folder" in result.output, result.output
    result = runner.invoke(app, base + ["--out", str(tmp_path / "s"), "--device", "nope"])
    assert result.exit_code == 2 and "is not a device" in result.output, result.output


def test_batches_are_reported_for_progress_bars():
    from mmftraj.models import build_unet, unet_config
    from mmftraj.tasks.image_common import generate

    model = build_unet(unet_config("tiny", image_size=8, in_channels=1))
    seen = []
    images = generate(model, 5, 1, "mean", seed=0, batch=2, on_batch=seen.append)
    assert images.shape == (5, 1, 8, 8) and seen == [2, 2, 1]
    counted = []
    fid._features(lambda x: x.flatten(1), images, 3, "cpu", counted.append)
    assert counted == [3, 2]


def test_fid_cifar_end_to_end_with_a_stand_in_network(tmp_path, monkeypatch):

    write_cifar_dir(tmp_path / "data")
    (tmp_path / "w.pth").write_bytes(b"stand-in")
    monkeypatch.setenv("MMFTRAJ_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(fid, "load_inception", lambda *a, **k: lambda x: x.mean(dim=(2, 3)))
    samples = _npz(tmp_path / "s.npz", (5, 3, 32, 32))
    inputs = {"samples_file": samples, "data_dir": tmp_path / "data", "weights": tmp_path / "w.pth", "device": "cpu"}
    first = fid.compute_fid("cifar", **inputs)
    assert first["n"] == 5 and np.isfinite(first["fid"]) and list((tmp_path / "cache").glob("fid_ref_cifar10_*"))
    assert fid.compute_fid("cifar", **inputs)["fid"] == first["fid"]  # reference statistics from the cache
