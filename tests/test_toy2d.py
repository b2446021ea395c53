"""toy2d end to end: one-step MMF beats one-step flow matching; a killed run resumes exactly."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mmftraj.checkpoint import latest_checkpoint, load_checkpoint
from mmftraj.tasks import toy2d


def _train(variant, tmp_path, steps=1000):
    cfg = toy2d.default_config("checkerboard")
    cfg.objective.variant = variant
    cfg.objective.lambda_warmup = steps // 2
    cfg.train.steps = steps
    cfg.train.ckpt_every = 0
    cfg.eval.n_samples = 2000
    return toy2d.train(cfg, tmp_path / variant, progress=False)


@pytest.mark.slow  # training-scale: ~20-40 s on 2 cores
def test_mmf_one_step_beats_fm_one_step(tmp_path):
    fm = _train("fm", tmp_path)
    mmf = _train("mmf", tmp_path)
    # Measured with the task defaults: mmf 0.098, fm 1.09 (1 step), data-vs-data floor 0.055.
    assert mmf["swd"]["1-step"] < 0.25
    assert mmf["swd"]["1-step"] < 0.5 * fm["swd"]["1-step"]
    assert fm["swd"]["4-step"] < 0.5 * fm["swd"]["1-step"]  # fm needs several Euler steps
    assert (tmp_path / "mmf" / "samples.png").stat().st_size > 10_000


CLI = [sys.executable, "-m", "mmftraj", "train", "--task", "toy2d", "--set", "model.hidden=32", "--set",
       "train.ckpt_every=100", "--set", "train.threads=1", "--set", "eval.n_samples=200", "--steps", "400"]


def test_killed_cli_run_resumes_to_identical_parameters(tmp_path):
    subprocess.run(CLI + ["--runs-dir", str(tmp_path), "--name", "full"], check=True, capture_output=True)
    proc = subprocess.Popen(CLI + ["--runs-dir", str(tmp_path), "--name", "killed"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    target = tmp_path / "toy2d" / "killed" / "checkpoints" / "step_00000200"
    deadline = time.time() + 120
    while not target.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert target.exists()
    resumed = subprocess.run(CLI + ["--runs-dir", str(tmp_path), "--name", "killed", "--resume"], capture_output=True,
                             text=True)
    assert resumed.returncode == 0, resumed.stderr
    full, _ = load_checkpoint(tmp_path / "toy2d" / "full")
    again, meta = load_checkpoint(tmp_path / "toy2d" / "killed")
    assert meta["step"] == 400 and latest_checkpoint(tmp_path / "toy2d" / "killed").name == "step_00000400"
    assert full.keys() == again.keys()
    for key in full:
        assert torch.equal(full[key], again[key]), key


def test_eval_applies_its_options_and_refuses_what_it_cannot_use(tmp_path):
    import pytest

    from mmftraj.errors import UserError

    _train("mmf", tmp_path, steps=20)
    run = tmp_path / "mmf"
    base = toy2d.evaluate(run, steps=[1], overrides=["eval.n_samples=300"])
    reseeded = toy2d.evaluate(run, steps=[1], overrides=["eval.n_samples=300"], seed=7)
    assert base["swd"]["1-step"] != reseeded["swd"]["1-step"]  # --seed reaches the sampler
    assert base == toy2d.evaluate(run, steps=[1], overrides=["eval.n_samples=300"])
    with pytest.raises(UserError, match="unknown config key 'eval.bogus'"):
        toy2d.evaluate(run, overrides=["eval.bogus=1"])
    with pytest.raises(UserError, match="only eval"):
        toy2d.evaluate(run, overrides=["train.lr=1"])
    with pytest.raises(UserError, match="no episodes"):
        toy2d.evaluate(run, episodes=3)
    tensors = sorted((run / "checkpoints").glob("step_*"))[-1] / "tensors.safetensors"
    tensors.write_bytes(tensors.read_bytes()[:1000])  # a truncated file: one clear error, no traceback
    with pytest.raises(UserError, match="is corrupt: its tensors do not match the checksum"):
        toy2d.evaluate(run)


def _signal_at_random(tmp_path, name, signum, delay):
    """Start a long run; once it has logged its first steps, wait `delay` s and send `signum`."""
    proc = subprocess.Popen(CLI + ["--steps", "5000", "--runs-dir", str(tmp_path), "--name", name,
                                   "--set", "train.ckpt_every=0", "--set", "train.log_every=10"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "toy2d" / name / "metrics.csv"
    deadline = time.time() + 120
    while not metrics.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    time.sleep(delay)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


@pytest.mark.slow  # 20 CLI runs: a few minutes
def test_sigint_and_sigterm_at_random_moments_save_the_uninterrupted_runs_step():
    """10 SIGINTs and 10 SIGTERMs at random moments: each run exits 130/143 and its checkpoint
    equals, tensor for tensor, the uninterrupted run's checkpoint at the same step."""
    import random
    import tempfile

    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cut = 0
        for i, signum in enumerate([signal.SIGINT] * 10 + [signal.SIGTERM] * 10):
            code, err = _signal_at_random(tmp, f"cut{i}", signum, rng.uniform(0.0, 3.0))
            if code == 0:  # finished before the signal: nothing to compare
                continue
            assert code == 128 + signum, err
            ckpt = latest_checkpoint(tmp / "toy2d" / f"cut{i}")
            step = int(ckpt.name.split("_")[1])
            subprocess.run(CLI[:-1] + [str(step), "--runs-dir", str(tmp), "--name", f"whole{i}"], check=True,
                           capture_output=True)
            a, meta = load_checkpoint(ckpt)
            b, _ = load_checkpoint(tmp / "toy2d" / f"whole{i}")
            assert meta["step"] == step and a.keys() == b.keys()
            assert all(torch.equal(a[k], b[k]) for k in a), (i, step)
            cut += 1
        assert cut >= 15  # most signals arrived mid-run


def _same_tensors(a_dir, b_dir) -> bool:
    a, _ = load_checkpoint(a_dir)
    b, _ = load_checkpoint(b_dir)
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _one_line_exit_2(out) -> bool:
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    return out.returncode == 2 and len(lines) == 1 and "Traceback" not in out.stderr + out.stdout


def _flip_a_byte(run, rng) -> str:
    """XOR one random byte of a random file (tensors or meta.json) of a random checkpoint."""
    path = rng.choice([f for ckpt in sorted((run / "checkpoints").glob("step_*"))
                       for f in sorted(ckpt.iterdir())])
    data = bytearray(path.read_bytes())
    at = rng.randrange(len(data))
    data[at] ^= rng.randrange(1, 256)
    path.write_bytes(bytes(data))
    return f"{path.relative_to(run)}@{at}"


@pytest.mark.slow  # 20 interrupted runs and their resumes, 10 corrupted copies: ~5 minutes on 2 busy cores
def test_random_kills_and_signals_resume_bit_identical_and_byte_flips_never_traceback():
    """20 kill -9 / SIGINT / SIGTERM at random moments of `train` (start-up included), each
    followed by `--resume` (or a plain start when no run folder was made yet): the final
    checkpoint equals the uninterrupted run's, tensor for tensor. Then 10 copies of the finished
    run with one random byte of one checkpoint file changed: `eval` and `--resume` either give
    the untouched run's results bit for bit or stop with one line and exit 2, never a traceback."""
    import json
    import random
    import shutil
    import tempfile

    rng = random.Random(2026)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        subprocess.run(CLI + ["--runs-dir", str(tmp), "--name", "whole"], check=True, capture_output=True)
        wall = time.perf_counter() - t0
        whole = tmp / "toy2d" / "whole"
        for i in range(20):
            signum = rng.choice([signal.SIGKILL, signal.SIGINT, signal.SIGTERM])
            run = tmp / "toy2d" / f"cut{i}"
            proc = subprocess.Popen(CLI + ["--runs-dir", str(tmp), "--name", run.name], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.0, wall))
            proc.send_signal(signum)
            proc.wait(timeout=120)
            again = CLI + ["--runs-dir", str(tmp), "--name", run.name] + (["--resume"] if run.exists() else [])
            out = subprocess.run(again, capture_output=True, text=True)
            assert out.returncode == 0, (i, signum, out.stderr)
            assert latest_checkpoint(run).name == "step_00000400", i
            assert _same_tensors(whole, run), (i, signum)

        ref_eval = tmp / "ref-eval"
        evaluate = [sys.executable, "-m", "mmftraj", "eval", "--task", "toy2d", "--threads", "1", "--checkpoint"]
        subprocess.run(evaluate + [str(whole), "--out", str(ref_eval)], check=True, capture_output=True)
        longer = [*CLI[:-1], "500", "--resume"]
        shutil.copytree(whole, tmp / "toy2d" / "whole500")
        subprocess.run(longer + ["--runs-dir", str(tmp), "--name", "whole500"], check=True, capture_output=True)

        def scores(folder):
            return {k: v for k, v in json.loads((folder / "results.json").read_text()).items()
                    if k not in ("checkpoint", "run_dir")}

        refused = 0
        for j in range(10):
            run = tmp / "toy2d" / f"flip{j}"
            shutil.copytree(whole, run)
            where = _flip_a_byte(run, rng)
            out = subprocess.run(evaluate + [str(run), "--out", str(tmp / f"eval{j}")], capture_output=True, text=True)
            assert out.returncode == 0 and scores(tmp / f"eval{j}") == scores(ref_eval) or _one_line_exit_2(out), \
                (where, out.stderr)
            out = subprocess.run(longer + ["--runs-dir", str(tmp), "--name", run.name], capture_output=True, text=True)
            assert out.returncode == 0 and _same_tensors(tmp / "toy2d" / "whole500", run) or _one_line_exit_2(out), \
                (where, out.stderr)
            refused += out.returncode == 2
        assert 0 < refused < 10  # flips hit the checkpoint in use and the older one alike
