"""CIFAR-10 batch directory: loading, the restricted unpickler, errors, augmentation."""

from __future__ import annotations

import io
import os
import pickle
import pickletools
import struct

import numpy as np
import pytest
import torch

from mmftraj.data.cifar import (
    AUG_DIM,
    EXPECTED,
    edm_augment,
    hflip,
    load_cifar10,
    read_batch,
    restricted_load,
    to_float,
)
from mmftraj.errors import UserError

PER_BATCH = 6


class _Python2Pickler(pickle._Pickler):
    """Writes every str and bytes as Python 2 wrote its str (BINSTRING opcodes), so with
    encoding="bytes" they come back as bytes: dict keys, the dtype's byte-order mark and the
    array's raw data, as in the published cifar-10-batches-py files."""

    dispatch = dict(pickle._Pickler.dispatch)

    def _save_binstring(self, obj):
        data = obj if isinstance(obj, bytes) else obj.encode("latin1")
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[bytes] = _save_binstring
    dispatch[str] = _save_binstring


def _dump(obj, path, style: str = "python2"):
    """`python2`: protocol 2 as written by Python 2 under numpy 1.x (the published files);
    `numpy2`: protocol 3 as written by Python 3 under numpy 2 (numpy._core names, unicode strings)."""
    if style == "python2":
        buf = io.BytesIO()
        _Python2Pickler(buf, protocol=2).dump(obj)
        data = buf.getvalue().replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
        opcodes = {op.name for op, _, _ in pickletools.genops(data)}
        assert not opcodes & {"BINUNICODE", "SHORT_BINBYTES", "BINBYTES"}
    else:
        data = pickle.dumps(obj, protocol=3)
    path.write_bytes(data)


def write_cifar_dir(root, style: str = "python2"):
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for name in EXPECTED[:-1]:
        data = rng.integers(0, 256, (PER_BATCH, 3072), dtype=np.uint8)
        labels = [int(x) for x in rng.integers(0, 10, PER_BATCH)]
        arrays[name] = (data, labels)
        _dump({b"batch_label": name.encode(), b"labels": labels, b"data": data,
               b"filenames": [f"img{i}.png".encode() for i in range(PER_BATCH)]}, root / name, style)
    _dump({b"label_names": [b"airplane"] * 10, b"num_cases_per_batch": PER_BATCH, b"num_vis": 3072},
          root / "batches.meta", style)
    return arrays


@pytest.mark.parametrize("style", ["python2", "numpy2"])
def test_synthetic_directory_loads(tmp_path, style):
    arrays = write_cifar_dir(tmp_path / "cifar-10-batches-py", style)
    images, labels = load_cifar10(tmp_path, "train")  # the parent directory works too
    assert images.shape == (5 * PER_BATCH, 3, 32, 32) and images.dtype == torch.uint8
    first = arrays["data_batch_1"][0][0]
    assert torch.equal(images[0, 0].flatten(), torch.from_numpy(first[:1024]))  # red plane first, row-major
    assert torch.equal(images[0, 2].flatten(), torch.from_numpy(first[2048:]))
    assert labels.tolist()[:PER_BATCH] == arrays["data_batch_1"][1]
    test_images, _ = load_cifar10(tmp_path / "cifar-10-batches-py", "test")
    assert test_images.shape == (PER_BATCH, 3, 32, 32)
    x = to_float(images)
    assert x.min() >= -1 and x.max() <= 1


class _System:
    def __init__(self, cmd):
        self.cmd = cmd

    def __reduce__(self):
        return os.system, (self.cmd,)


def test_hostile_pickles_are_refused(tmp_path):
    marker = tmp_path / "pwned"
    evil = pickle.dumps({b"data": _System(f"touch {marker}"), b"labels": []}, protocol=3)
    with pytest.raises(UserError, match="refusing to unpickle global (posix|os|nt).system"):
        restricted_load(evil, "evil")
    assert not marker.exists()
    with pytest.raises(UserError, match="builtins.eval"):
        restricted_load(pickle.dumps(eval, protocol=3), "evil")
    # an array of Python objects would let a pickle smuggle arbitrary objects through numpy
    with pytest.raises(UserError, match="object"):
        restricted_load(pickle.dumps(np.array([1, "a"], dtype=object), protocol=3), "evil")
    with pytest.raises(UserError, match="not a readable"):
        restricted_load(b"\x80\x03garbage", "junk")
    # a hostile file inside an otherwise complete directory
    write_cifar_dir(tmp_path / "d")
    (tmp_path / "d" / "data_batch_3").write_bytes(evil)
    with pytest.raises(UserError, match="data_batch_3"):
        load_cifar10(tmp_path / "d")
    assert not marker.exists()


def test_missing_or_incomplete_directory_names_the_files(tmp_path):
    with pytest.raises(UserError, match="data_batch_1.*test_batch.*batches.meta"):
        load_cifar10(tmp_path / "nowhere")
    write_cifar_dir(tmp_path / "d")
    (tmp_path / "d" / "data_batch_4").unlink()
    with pytest.raises(UserError, match="missing: data_batch_4"):
        load_cifar10(tmp_path / "d")


def test_missing_files_are_listed_once(tmp_path):
    with pytest.raises(UserError) as caught:
        load_cifar10(tmp_path / "nowhere")
    assert all(str(caught.value).count(name) == 1 for name in EXPECTED), caught.value
    write_cifar_dir(tmp_path / "cifar-10-batches-py")
    (tmp_path / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(UserError) as caught:
        load_cifar10(tmp_path)  # the parent: what is missing is named in the subfolder
    assert "missing: test_batch)" in str(caught.value) and "data_batch_1" not in str(caught.value)


def test_wrong_contents_are_refused(tmp_path):
    path = tmp_path / "b"
    _dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, path)
    with pytest.raises(UserError, match="3072"):
        read_batch(path)
    _dump({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 11]}, path)
    with pytest.raises(UserError, match="labels"):
        read_batch(path)
    _dump([1, 2], path)
    with pytest.raises(UserError, match="dict"):
        read_batch(path)


def test_flips_and_edm_augmentation():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, 32, 32)
    flipped = hflip(x, g)
    same = (flipped == x).flatten(1).all(1)
    mirrored = (flipped == x.flip(-1)).flatten(1).all(1)
    assert bool((same | mirrored).all()) and 10 < int(mirrored.sum()) < 54
    out, labels = edm_augment(x, 0.0, g)
    assert torch.equal(out, x) and labels.shape == (64, AUG_DIM) and not labels.any()
    out, labels = edm_augment(x, 1.0, g)
    assert out.shape == x.shape and labels.abs().sum(1).gt(0).all()
    assert not torch.allclose(out, x)
    # an image no transform was drawn for is left exactly unchanged
    out, labels = edm_augment(x, 0.3, g)
    untouched = ~labels.any(1)
    assert torch.equal(out[untouched], x[untouched])


def test_cifar_task_trains_and_samples_end_to_end(tmp_path):
    """The cifar task on a synthetic batch directory: a tiny U-Net, EDM augmentation labels as
    conditioning, two steps on the CPU, then `mmftraj sample`."""
    from typer.testing import CliRunner

    from mmftraj.cli import app
    from mmftraj.runs import prepare_and_train

    write_cifar_dir(tmp_path / "data")
    overrides = [f"data.dir={tmp_path / 'data'}", "train.precision=fp32", "train.compile=false",
                 "train.batch_size=4", "train.log_every=1", "train.warmup_steps=1", "model.model_channels=16",
                 "model.channel_mult=[1, 2]", "model.num_blocks=1", "model.groups=4", "model.channels_per_head=16",
                 "eval.n_samples=4", "eval.steps=[1]"]
    res = prepare_and_train("cifar", overrides=overrides, steps=2, device="cpu", runs_dir=tmp_path, name="c",
                            progress=False)
    run = tmp_path / "cifar" / "c"
    assert res["steps"] == 2 and (run / "samples-1step.png").is_file() and (run / "metrics.csv").is_file()
    result = CliRunner().invoke(app, ["sample", "--task", "cifar", "--checkpoint", str(run), "--n", "3",
                                      "--out", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    with np.load(next((tmp_path / "s").glob("*.npz"))) as data:
        assert data["images"].shape == (3, 32, 32, 3)
    missing = CliRunner().invoke(app, ["train", "--task", "cifar", "--device", "cpu", "--steps", "1",
                                       "--runs-dir", str(tmp_path), "--name", "m"])
    assert missing.exit_code == 2 and "data.dir" in missing.output


@pytest.mark.parametrize("labels,expected", [
    ("deep", "nested more than 4 deep"),
    ("wide", "more than 2,000,000 entries"),
])
def test_a_small_pickle_standing_for_a_huge_tree_is_refused(tmp_path, labels, expected):
    """Shared references let a few KB of allowed pickle stand for labels nested 27 deep (4 GB once
    np.asarray expanded them); here shallower/narrower versions that old code read quickly."""
    inner = [0]
    if labels == "deep":
        for _ in range(8):
            inner = [inner, inner]
    else:
        inner = [[0] * 1500] * 1500  # one list of 1500 zeros, referenced 1500 times
    path = tmp_path / "data_batch_1"
    _dump({b"data": np.zeros((2, 3072), np.uint8), b"labels": inner}, path)
    assert path.stat().st_size < 20_000
    with pytest.raises(UserError, match=expected):
        read_batch(path)


def test_a_large_unet_on_the_cpu_is_announced_in_one_line(capsys):
    """The default 55.8M U-Net takes minutes a step on a CPU: say so before training, and name the
    CPU-sized preset; a small network or a GPU run says nothing."""
    import torch

    from mmftraj.tasks.cifar import Config, cpu_note

    cfg = Config()
    cpu_note(torch.nn.Linear(4000, 3000), cfg)  # 12.0M parameters
    line = capsys.readouterr().out
    assert "12.0M-parameter U-Net on the CPU" in line and "--preset small" in line and line.count("\n") == 1
    cpu_note(torch.nn.Linear(100, 100), cfg)
    cfg.train.device = "cuda"
    cpu_note(torch.nn.Linear(4000, 3000), cfg)
    assert capsys.readouterr().out == ""


def test_a_batch_larger_than_the_data_is_capped_in_one_line(capsys):
    """128 rows from a 36-image folder would cost 3.6x the arithmetic for the same expected gradient:
    the batch takes the data's size, says so once, and a batch that fits is left alone."""
    from mmftraj.tasks.cifar import Config, cap_batch

    cfg = Config()
    cap_batch(cfg, 36, progress=True)
    line = capsys.readouterr().out
    assert cfg.train.batch_size == 36 and "128" in line and "36 training images" in line and line.count("\n") == 1
    cap_batch(cfg, 50_000, progress=True)
    assert cfg.train.batch_size == 36 and capsys.readouterr().out == ""
