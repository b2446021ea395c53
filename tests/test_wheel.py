"""The package works installed from a wheel, outside the repository: its presets, layouts and
the shipped Push-T demonstrations travel inside it."""

import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_a_built_wheel_trains_from_a_folder_outside_the_repository(tmp_path):
    pytest.importorskip("build")
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(ROOT)], check=True,
                   capture_output=True, cwd=tmp_path)  # not the repository root, whose build/ would shadow `build`
    wheel = next(dist.glob("mmftraj-*.whl"))
    env = tmp_path / "venv"  # the dependencies (torch, ...) come from this interpreter's site-packages
    venv.EnvBuilder(system_site_packages=True, with_pip=True).create(env)
    python = env / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)], check=True,
                   capture_output=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    where = subprocess.run([str(python), "-c", "import mmftraj; print(mmftraj.__file__)"], cwd=outside,
                           capture_output=True, text=True, check=True).stdout
    assert str(env) in where  # the wheel's copy, not the repository's
    for task, extra in (("toy2d", []), ("pusht", ["--set", "train.batch_size=8", "--set", "model.width=16",
                                                  "--set", "model.depth=1", "--set", "eval.every=0", "--set",
                                                  "eval.test_starts=1", "--set", "eval.select_starts=1"])):
        out = subprocess.run([str(python), "-m", "mmftraj", "train", "--task", task,
                              "--steps", "20" if task == "toy2d" else "2", "--set", "train.threads=1", *extra],
                             cwd=outside, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert (outside / "runs" / task).is_dir()
