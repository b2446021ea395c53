"""Class folders of PNG/JPEG images: loading, the uint8 cache and its invalidation, each bad
input as a one-line error, and a cifar training run (then `mmftraj sample`) from a folder."""

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from mmftraj.cli import app
from mmftraj.data import image_folder
from mmftraj.data.image_folder import CIFAR10_CLASSES, load_image_folder, load_images
from mmftraj.errors import UserError
from mmftraj.tasks.cifar import Config as CifarConfig
from mmftraj.tasks.image_common import load_image_model


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MMFTRAJ_CACHE", str(tmp_path / "cache"))


def _pixels(seed, size=8, mode="RGB"):
    rng = np.random.default_rng(seed)
    shape = (size, size, 3) if mode == "RGB" else (size, size)
    return rng.integers(0, 256, shape, dtype=np.uint8)


def write_folder(root, classes=("cat", "dog", "owl"), per_class=3, test=1, size=8):
    """PNGs and one JPEG per class under root/train/<class>/ (and root/test/<class>/)."""
    for split, n in (("train", per_class), ("test", test)):
        for c, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                image = Image.fromarray(_pixels(100 * c + i + (50 if split == "test" else 0), size))
                image.save(folder / (f"{i}.jpg" if i == n - 1 and n > 1 else f"{i}.png"))
    return root


def test_a_folder_loads_as_uint8_with_labels_and_a_manifest(tmp_path):
    root = write_folder(tmp_path / "imgs")
    found = load_image_folder(root, "train")
    assert found.images.shape == (9, 3, 8, 8) and found.images.dtype == torch.uint8
    assert found.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    m = found.manifest
    assert m["classes"] == ["cat", "dog", "owl"] and m["class_counts"] == {"cat": 3, "dog": 3, "owl": 3}
    assert (m["count"], m["height"], m["width"], m["mode"]) == (9, 8, 8, "RGB")
    # PNG is lossless: the first image's pixels come back exactly, channels first
    assert np.array_equal(found.images[0].permute(1, 2, 0).numpy(), _pixels(0))
    test = load_image_folder(root, "test")
    assert test.images.shape == (3, 3, 8, 8) and test.manifest["split"] == "test"
    data = load_images(root, "train")
    assert torch.equal(data.images, found.images) and "9 images of 3 classes" in data.description
    assert data.classes == ("cat", "dog", "owl") and data.key.startswith("folder-train-")


def test_class_folders_directly_in_the_folder_are_the_training_split(tmp_path):
    write_folder(tmp_path / "imgs", test=0)
    flat = tmp_path / "imgs" / "train"
    assert load_image_folder(flat, "train").images.shape[0] == 9
    with pytest.raises(UserError, match="has no test/ folder"):
        load_image_folder(flat, "test")


def test_the_cache_is_reused_and_rebuilt_when_the_folder_changes(tmp_path, monkeypatch):
    root = write_folder(tmp_path / "imgs")
    first = load_image_folder(root)
    calls = []
    real = image_folder.decode
    monkeypatch.setattr(image_folder, "decode", lambda *a: calls.append(1) or real(*a))
    again = load_image_folder(root)
    assert calls == [] and torch.equal(again.images, first.images)  # reused: nothing decoded
    Image.fromarray(_pixels(999)).save(root / "train" / "dog" / "extra.png")  # a new image
    grown = load_image_folder(root)
    assert calls == [1] and grown.manifest["count"] == 10 and grown.manifest["class_counts"]["dog"] == 4
    path = root / "train" / "cat" / "0.png"  # rewrite one image in place
    Image.fromarray(_pixels(7)).save(path)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    rewritten = load_image_folder(root)
    assert calls == [1, 1] and np.array_equal(rewritten.images[0].permute(1, 2, 0).numpy(), _pixels(7))
    caches = list((tmp_path / "cache" / "image-folders").iterdir())
    assert len(caches) == 1 and not any(p.name.startswith(".") for p in caches)  # one cache, no leftovers


def _bad(root, case):
    write_folder(root)
    cat = root / "train" / "cat"
    if case == "sizes":
        Image.fromarray(_pixels(1, size=16)).save(cat / "big.png")
    elif case == "truncated":
        data = (cat / "1.png").read_bytes()
        (cat / "1.png").write_bytes(data[: len(data) // 2])
    elif case == "not an image":
        (cat / "notes.png").write_text("hello")
    elif case == "empty class":
        (root / "train" / "empty").mkdir()
    elif case == "mode":
        Image.fromarray(np.zeros((8, 8, 4), dtype=np.uint8), "RGBA").save(cat / "alpha.png")
    elif case == "no images":
        for p in (root / "train").rglob("*.*"):
            p.unlink()


@pytest.mark.parametrize("case, message", [
    ("sizes", r"big.png: 16×16 pixels, but .* has 8×8; every image of a folder must have one size"),
    ("truncated", r"1.png: unreadable or truncated image"),
    ("not an image", r"notes.png: unreadable or truncated image"),
    ("empty class", r"class folder\(s\) with no PNG or JPEG images: empty"),
    ("mode", r"alpha.png: image mode 'RGBA', but .* is 'RGB'"),
    ("no images", r"no PNG or JPEG images in its 3 class folders"),
])
def test_bad_folders_are_one_line_errors_naming_the_file(tmp_path, case, message):
    _bad(tmp_path / "imgs", case)
    with pytest.raises(UserError, match=message) as err:
        load_image_folder(tmp_path / "imgs")
    assert "\n" not in str(err.value)
    cache = tmp_path / "cache" / "image-folders"
    assert not cache.exists() or not any(cache.iterdir())  # no half-written cache left behind


def test_a_first_image_in_another_mode_and_folders_that_are_not_data(tmp_path):
    root = tmp_path / "p"
    (root / "a").mkdir(parents=True)
    Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).convert("P").save(root / "a" / "0.png")
    with pytest.raises(UserError, match="image mode 'P'; image folders hold RGB"):
        load_image_folder(root)
    with pytest.raises(UserError, match="does not exist"):
        load_image_folder(tmp_path / "nowhere")
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "x.png").write_bytes(b"")
    with pytest.raises(UserError, match="neither CIFAR-10's python batches .* nor class folders"):
        load_images(tmp_path / "flat")


def test_grayscale_folders_load_with_one_channel(tmp_path):
    for c in ("a", "b"):
        (tmp_path / "g" / c).mkdir(parents=True)
        Image.fromarray(_pixels(3, mode="L")).save(tmp_path / "g" / c / "0.png")
    found = load_image_folder(tmp_path / "g")
    assert found.images.shape == (2, 1, 8, 8) and found.manifest["mode"] == "L"


def test_a_folder_with_cifar10_classes_must_be_all_of_cifar10(tmp_path):
    write_folder(tmp_path / "c", classes=CIFAR10_CLASSES, per_class=2, test=1, size=32)
    with pytest.raises(UserError, match="has CIFAR-10's classes but not CIFAR-10's train split .*5,000 per class"):
        load_image_folder(tmp_path / "c")
    assert load_image_folder(tmp_path / "c", check_cifar10=False).images.shape == (20, 3, 32, 32)


def test_cifar_trains_from_a_folder_and_samples_png_grids(tmp_path):
    root = write_folder(tmp_path / "imgs", per_class=4)
    base = ["--task", "cifar", "--device", "cpu", "--runs-dir", str(tmp_path / "runs")]
    small = ["--set", "train.precision=fp32", "--set", "train.compile=false", "--set", "train.batch_size=4",
             "--set", "train.log_every=1", "--set", "train.warmup_steps=1", "--set", "train.threads=1",
             "--set", "model.model_channels=16", "--set", "model.channel_mult=[1, 2]", "--set", "model.num_blocks=1",
             "--set", "model.groups=4", "--set", "model.channels_per_head=16", "--set", "model.attn_resolutions=[4]",
             "--set", "eval.n_samples=4", "--set", "eval.steps=[1]"]
    runner = CliRunner()
    wrong = runner.invoke(app, ["train", *base, "--data-dir", str(root), "--steps", "2", "--name", "w", *small])
    assert wrong.exit_code == 2 and "--set model.image_size=8" in wrong.output, wrong.output
    assert "in_channels" not in wrong.output.split(":")[-1]  # only the setting that is wrong
    ok = runner.invoke(app, ["train", *base, "--data-dir", str(root), "--steps", "2", "--name", "f", *small,
                             "--set", "model.image_size=8"])
    assert ok.exit_code == 0, ok.output
    run = tmp_path / "runs" / "cifar" / "f"
    assert (run / "samples-1step.png").is_file()
    model, _ = load_image_model(run, "cifar", CifarConfig)
    assert json.loads((run / "results.json").read_text())["parameters"] == sum(p.numel() for p in model.parameters())
    sampled = runner.invoke(app, ["sample", "--task", "cifar", "--checkpoint", str(run), "--n", "6",
                                  "--out", str(tmp_path / "s")])
    assert sampled.exit_code == 0, sampled.output
    grid = next((tmp_path / "s").glob("*.png"))
    assert Image.open(grid).mode == "RGB"
    with np.load(next((tmp_path / "s").glob("*.npz"))) as data:
        assert data["images"].shape == (6, 8, 8, 3)


def test_an_image_size_the_unet_cannot_halve_is_one_line_before_training(tmp_path):
    """33×33 images: the message names the size the U-Net can take, never a `--set
    model.image_size=33` that would then fail inside the network."""
    root = write_folder(tmp_path / "imgs", per_class=2, size=33)
    args = ["train", "--task", "cifar", "--device", "cpu", "--runs-dir", str(tmp_path / "runs"), "--data-dir",
            str(root), "--steps", "1", "--set", "train.threads=1", "--set", "train.compile=false"]
    for extra in ([], ["--set", "model.image_size=33"]):
        out = CliRunner().invoke(app, [*args, *extra])
        assert out.exit_code == 2 and "needs a size divisible by" in out.output, out.output
        assert "Traceback" not in out.output and "model.image_size=33" not in out.output
    assert not (tmp_path / "runs" / "cifar" / "mmf-s0").exists()


def test_classifier_frechet_distance_after_training_and_from_eval(tmp_path):
    """eval.fd: a classifier trained on the folder (cached), its test accuracy, and a Fréchet
    distance per step count beside the real-data floor; `mmftraj eval` recomputes it."""
    from mmftraj.runs import prepare_and_train

    root = write_folder(tmp_path / "imgs", per_class=6, test=2)
    tiny = ["train.precision=fp32", "train.compile=false", "train.batch_size=4", "train.warmup_steps=1",
            "train.threads=1", "model.model_channels=16", "model.channel_mult=[1, 2]", "model.num_blocks=1",
            "model.groups=4", "model.channels_per_head=16", "model.attn_resolutions=[4]", "model.image_size=8",
            "eval.fd=true", "eval.n_samples=12", "eval.steps=[1, 2]", "eval.classifier_epochs=1",
            "eval.classifier_width=4", f"data.dir={root}"]
    out = prepare_and_train("cifar", overrides=tiny, steps=2, device="cpu", runs_dir=tmp_path / "runs", name="f",
                            progress=False)
    assert set(out["fd"]) == {"1-step", "2-step"} and all(v >= 0 for v in out["fd"].values())
    assert out["fd_data_floor"] >= 0 and out["fd_samples"] == 12
    assert 0 <= out["classifier_accuracy"] <= 1 and out["classifier"]["accuracy_on"] == "the test split"
    assert "6 images of 3 classes" in out["fd_reference"]  # the test split is the reference
    cached = list((tmp_path / "cache" / "image-classifiers").glob("*.safetensors"))
    assert len(cached) == 1
    result = CliRunner().invoke(app, ["eval", "--task", "cifar", "--checkpoint", str(tmp_path / "runs" / "cifar" / "f"),
                                      "--steps", "1"])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "cache" / "image-classifiers").glob("*.safetensors"))) == 1  # reused
    other = write_folder(tmp_path / "big", per_class=6, test=2, size=16)  # data the model does not take
    result = CliRunner().invoke(app, ["eval", "--task", "cifar", "--checkpoint", str(tmp_path / "runs" / "cifar" / "f"),
                                      "--set", f"data.dir={other}"])
    assert result.exit_code == 2 and "the images are 16×16" in result.output


def test_the_classifier_learns_separable_classes():
    from mmftraj.data.image_folder import ImageSet
    from mmftraj.evaluation.image_classifier import ClassifierRecipe, train_classifier

    g = torch.Generator().manual_seed(0)
    labels = torch.arange(60) % 2
    images = (torch.rand(60, 3, 8, 8, generator=g) * 60 + 40 + 120 * labels[:, None, None, None]).to(torch.uint8)
    data = ImageSet(images, labels, "two brightness classes", "test", ("dark", "bright"))
    model, meta = train_classifier(data, None, ClassifierRecipe(width=4, epochs=8, batch=16, lr=1e-2))
    assert meta["accuracy_on"] == "a held-out tenth of train" and meta["accuracy"] == 1.0


def test_a_test_split_of_another_shape_or_other_classes_is_refused(tmp_path):
    from mmftraj.data.image_folder import check_test_split

    root = write_folder(tmp_path / "a", test=1)
    train = load_images(root, "train")
    for name, change in (("size", dict(size=16)), ("classes", dict(classes=("cat", "dog", "yak")))):
        other = write_folder(tmp_path / name, **change)
        with pytest.raises(UserError, match="the test split's images are|the test split's classes"):
            check_test_split(train, load_images(other, "test"))
    check_test_split(train, load_images(root, "test"))  # its own test split is fine


def test_a_damaged_cache_is_rebuilt_and_a_file_is_not_a_folder(tmp_path):
    root = write_folder(tmp_path / "imgs")
    expected = load_image_folder(root).images.clone()  # a copy: the loaded tensor maps the cache file itself
    cache = next((tmp_path / "cache" / "image-folders").iterdir()) / "images.npy"
    cache.write_bytes(cache.read_bytes()[:-100])  # cut short from outside
    again = load_image_folder(root)
    assert torch.equal(again.images, expected)
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(UserError, match="is a file, not a folder"):
        load_images(tmp_path / "file.png")


def test_a_balanced_subset_keeps_pixels_classes_and_never_overwrites(tmp_path):
    from mmftraj.data.image_subset import write_subset

    root = write_folder(tmp_path / "imgs", per_class=4, test=2)
    made = write_subset(root, tmp_path / "sub", per_class=2, test_per_class=1, seed=3)
    assert made.counts == {"train": 6, "test": 3} and made.bytes > 0
    manifest = json.loads((tmp_path / "sub" / "subset.json").read_text())
    assert manifest["images"] == {"train": 6, "test": 3} and manifest["classes"] == ["cat", "dog", "owl"]
    source, sub = load_images(root, "train"), load_images(tmp_path / "sub", "train")
    assert sub.classes == source.classes and sub.labels.tolist() == [0, 0, 1, 1, 2, 2]
    for image, name in zip(sub.images, sorted((tmp_path / "sub" / "train").glob("*/*.png")), strict=True):
        assert torch.equal(image, source.images[int(name.stem)])  # the file name is the source index
    assert load_images(tmp_path / "sub", "test").images.shape == (3, 3, 8, 8)
    again = write_subset(root, tmp_path / "sub2", per_class=2, test_per_class=1, seed=3)
    assert sorted(p.name for p in (tmp_path / "sub2" / "train").rglob("*.png")) == \
        sorted(p.name for p in (tmp_path / "sub" / "train").rglob("*.png")) and again.counts == made.counts
    with pytest.raises(UserError, match="already exists"):
        write_subset(root, tmp_path / "sub", per_class=1)
    with pytest.raises(UserError, match=r"train split has fewer than 5 images in class\(es\) cat 4, dog 4, owl 4; "
                                         r"use --per-class 4 or less"):
        write_subset(root, tmp_path / "sub3", per_class=5)
    with pytest.raises(UserError, match="use --test-per-class 2 or less"):
        write_subset(root, tmp_path / "sub3", per_class=1, test_per_class=3)
    assert not (tmp_path / "sub3").exists()


def test_a_subset_refuses_targets_that_would_harm_or_fail_and_cleans_up_after_a_failure(tmp_path, monkeypatch):
    from mmftraj.data.image_subset import write_subset

    root = write_folder(tmp_path / "imgs", per_class=2, test=1)
    with pytest.raises(UserError, match="inside the source"):
        write_subset(root, root / "sub", per_class=1)
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="is a file, not a folder"):
        write_subset(root, tmp_path / "file" / "sub", per_class=1)
    flat = write_folder(tmp_path / "flat", test=0) / "train"
    with pytest.raises(UserError, match="no test split.*--test-per-class 0"):
        write_subset(flat, tmp_path / "sub", per_class=1, test_per_class=1)
    (root / "test" / "emu").mkdir()
    Image.fromarray(_pixels(9)).save(root / "test" / "emu" / "0.png")
    with pytest.raises(UserError, match="test split's classes"):
        write_subset(root, tmp_path / "sub", per_class=1, test_per_class=1)
    # a failure part-way (here: the disk) removes the partial folder and says what went wrong
    saves = []

    def failing_save(self, path, **kw):
        saves.append(path)
        if len(saves) == 2:
            raise OSError(28, "No space left on device")
        return original(self, path, **kw)

    original = Image.Image.save
    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(UserError, match="cannot write the subset.*No space left"):
        write_subset(root, tmp_path / "sub", per_class=1)
    assert not (tmp_path / "sub").exists() and not (tmp_path / ".sub.partial").exists()


def test_image_subset_from_the_command_line(tmp_path):
    root = write_folder(tmp_path / "imgs", per_class=2, test=0)
    result = CliRunner().invoke(app, ["data", "image-subset", "--data-dir", str(root), "--out",
                                      str(tmp_path / "sub"), "--per-class", "1"])
    assert result.exit_code == 0, result.output
    assert "3 train images" in result.output
    assert len(list((tmp_path / "sub" / "train").rglob("*.png"))) == 3 and not (tmp_path / "sub" / "test").exists()
