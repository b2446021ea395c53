"""Image pipeline: digits data, training lowers the loss, sample/fid commands, Inception structure."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mmftraj.cli import app
from mmftraj.core import ModularMeanFlow, ObjectiveConfig
from mmftraj.data.digits import load_digits_images
from mmftraj.errors import UserError
from mmftraj.evaluation.images import save_grid
from mmftraj.evaluation.inception import WEIGHTS_ENV, InceptionV3Features, load_inception
from mmftraj.models import build_unet, unet_config

runner = CliRunner()


def test_digits_images():
    x, y = load_digits_images(8)
    assert x.shape == (1797, 1, 8, 8) and y.shape == (1797,)
    assert x.min() == -1 and x.max() == 1
    x16, _ = load_digits_images(16)
    assert x16.shape == (1797, 1, 16, 16) and x16.abs().max() <= 1
    with pytest.raises(UserError, match="size"):
        load_digits_images(12)


def test_a_few_training_steps_lower_the_loss():
    x, _ = load_digits_images(8)
    torch.manual_seed(0)
    model = build_unet(unet_config("tiny", image_size=8, in_channels=1))
    objective = ModularMeanFlow(ObjectiveConfig(variant="mmf", adaptive_p=0.0, lambda_warmup=20))
    g = torch.Generator().manual_seed(0)
    fixed = x[torch.randint(0, len(x), (256,), generator=g)]
    probe = dict(noise=torch.randn(fixed.shape, generator=g), t=torch.rand(256, generator=g))
    probe["r"] = probe["t"] * torch.rand(256, generator=g)

    def probe_loss() -> float:
        with torch.no_grad():
            return float(objective.loss(model, fixed, lam=0.0, **probe)[0])

    before = probe_loss()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(40):
        batch = x[torch.randint(0, len(x), (64,), generator=g)]
        loss, _ = objective.loss(model, batch, step=step, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = probe_loss()
    assert after < 0.6 * before, (before, after)


def test_train_sample_and_fid_commands(tmp_path, monkeypatch):
    from mmftraj.runs import prepare_and_train

    overrides = ["model.model_channels=16", "model.groups=4", "model.channels_per_head=16", "eval.n_samples=0",
                 "train.batch_size=16", "train.log_every=2"]
    res = prepare_and_train("digits", overrides=overrides, steps=3, runs_dir=tmp_path, name="t", progress=False)
    assert res["steps"] == 3
    out = tmp_path / "samples"
    result = runner.invoke(app, ["sample", "--task", "digits", "--checkpoint", str(tmp_path / "digits" / "t"),
                                 "--steps", "2", "--n", "10", "--out", str(out)])
    assert result.exit_code == 0, result.output
    pngs, npzs = list(out.glob("*.png")), list(out.glob("*.npz"))
    assert len(pngs) == 1 and len(npzs) == 1
    with np.load(npzs[0]) as data:
        assert data["images"].shape == (10, 8, 8, 1) and data["images"].dtype == np.uint8
        assert data["samples"].shape == (10, 1, 8, 8) and int(data["steps"]) == 2
    # FID for cifar without weights (and without the fid extra): one clear line, exit code 2, nothing sampled
    monkeypatch.setattr("mmftraj.evaluation.inception.packaged_weights", lambda: None)
    result = runner.invoke(app, ["fid", "--task", "cifar", "--samples", str(npzs[0]), "--data-dir", str(tmp_path)],
                           env={WEIGHTS_ENV: ""})
    assert result.exit_code == 2 and "MMFTRAJ_INCEPTION_WEIGHTS" in result.output and "mmftraj[fid]" in result.output
    result = runner.invoke(app, ["fid", "--task", "digits", "--samples", str(npzs[0]), "--checkpoint", "x"])
    assert result.exit_code == 2 and "exactly one" in result.output


def test_sample_grid(tmp_path):
    imgs = torch.linspace(-1, 1, 5 * 3 * 4 * 4).reshape(5, 3, 4, 4)
    path = save_grid(imgs, tmp_path / "g.png", scale=2, pad=1)
    from PIL import Image

    with Image.open(path) as im:
        assert im.size == ((3 * 5 + 1) * 2, (2 * 5 + 1) * 2) and im.mode == "RGB"


def test_inception_structure_and_local_loading(tmp_path, monkeypatch):
    model = InceptionV3Features().eval()
    state = model.state_dict()
    # standard (torchvision / pytorch-fid) parameter names and shapes
    assert state["Conv2d_1a_3x3.conv.weight"].shape == (32, 3, 3, 3)
    assert state["Mixed_6b.branch7x7_2.conv.weight"].shape == (128, 128, 1, 7)
    assert state["Mixed_7c.branch3x3dbl_3b.conv.weight"].shape == (384, 384, 3, 1)
    assert state["Mixed_7c.branch_pool.conv.weight"].shape == (192, 2048, 1, 1)
    assert state["fc.weight"].shape == (1008, 2048)
    with torch.no_grad():
        feats = model(torch.rand(2, 3, 32, 32) * 2 - 1)
    assert feats.shape == (2, 2048) and torch.isfinite(feats).all()

    path = tmp_path / "pt_inception.pth"
    torch.save(state, path)
    monkeypatch.setenv(WEIGHTS_ENV, str(path))
    loaded = load_inception()  # from the environment variable
    assert torch.equal(loaded.Mixed_5b.branch1x1.conv.weight, model.Mixed_5b.branch1x1.conv.weight)
    monkeypatch.delenv(WEIGHTS_ENV)
    monkeypatch.setattr("mmftraj.evaluation.inception.packaged_weights", lambda: None)  # no fid extra
    with pytest.raises(UserError, match="--weights"):
        load_inception(None)
    with pytest.raises(UserError, match="not found"):
        load_inception(tmp_path / "absent.pth")
    partial = {k: v for k, v in state.items() if not k.startswith("Mixed_7c")}
    torch.save(partial, tmp_path / "partial.pth")
    with pytest.raises(UserError, match="lack"):
        load_inception(tmp_path / "partial.pth")


@pytest.mark.slow
def test_digits_classifier_is_accurate_and_deterministic(tmp_path):
    from mmftraj.evaluation.digits_features import load_classifier

    a, meta = load_classifier(tmp_path)
    assert meta["val_accuracy"] > 0.97
    b, _ = load_classifier(tmp_path)  # from the cache
    x, _ = load_digits_images(8)
    assert torch.equal(a.features(x[:50]), b.features(x[:50]))
