"""motion: the synthetic gait table, the held-out split and speed band (mmftraj.data.motion, .speed), the
window metrics, and training/evaluation on a user table and through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from mmftraj.data.gait import gait_table
from mmftraj.data.motion import load_store, load_windows, split_episodes, training_episodes
from mmftraj.data.speed import planar_speed, time_step
from mmftraj.data.tables import load_table
from mmftraj.errors import UserError
from mmftraj.evaluation.distances import sliced_wasserstein
from mmftraj.evaluation.motion_metrics import roughness
from mmftraj.tasks import motion


def test_gait_positions_integrate_the_actions_and_gaits_differ_in_speed():
    table = gait_table(episodes=6, steps=40, dt=0.05, seed=3)
    assert len(table) == 6 * 40 and set(table["episode"].str[:3]) == {"wal", "run"}
    for _, ep in table.groupby("episode"):
        xy, v = ep[["s_x", "s_y"]].to_numpy(), ep[["a_vx", "a_vy"]].to_numpy()
        assert np.allclose(xy[0], 0) and np.allclose(np.diff(xy, axis=0), v[:-1] * 0.05, atol=1e-12)
    speed = np.hypot(table["a_vx"], table["a_vy"]).groupby(table["episode"].str[:3]).mean()
    assert speed["wal"] < 1.8 < 2.3 < speed["run"]
    assert table.equals(gait_table(episodes=6, steps=40, dt=0.05, seed=3))


def test_held_out_episodes_are_a_seeded_disjoint_share():
    train, test = split_episodes(50, 0.1, seed=0)
    assert len(test) == 5 and len(train) == 45
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(50))
    assert np.array_equal(test, split_episodes(50, 0.1, seed=0)[1])
    assert not np.array_equal(test, split_episodes(50, 0.1, seed=1)[1])
    assert len(split_episodes(3, 0.01, 0)[1]) == 1  # at least one held out, one kept
    with pytest.raises(UserError, match="2 or more"):
        split_episodes(1, 0.5, 0)
    with pytest.raises(UserError, match="test_fraction"):
        split_episodes(10, 1.0, 0)


def test_roughness_is_zero_on_straight_lines_and_six_times_the_variance_of_white_noise():
    line = torch.linspace(0, 5, 40)[None, :, None] * torch.tensor([1.0, -2.0])
    assert roughness(line) == pytest.approx(0.0, abs=1e-9)
    noise = torch.randn(500, 64, 3, generator=torch.Generator().manual_seed(0))  # Δ²: 1 + 4 + 1 variances
    assert roughness(noise) == pytest.approx(6.0, rel=0.03)


def _tiny(cfg, steps=30):
    cfg.data.horizon = 16
    cfg.model.width, cfg.model.depth, cfg.model.patch = 32, 1, 4
    cfg.train.steps, cfg.train.batch_size, cfg.train.ckpt_every = steps, 32, 0
    cfg.train.threads = 1
    cfg.eval.n_samples, cfg.eval.steps = 64, [1, 2]
    return cfg


def _train(cfg, run_dir):
    """Train as `mmftraj train` does: the config completed from the data (model.dim_in) first."""
    return motion.train(motion.complete(cfg), run_dir, progress=False)


def test_training_on_a_user_table_with_its_own_column_names(tmp_path):
    table = gait_table(episodes=20, steps=24, seed=1).rename(
        columns={"episode": "take", "t": "seconds", "s_x": "root_x", "s_y": "root_y", "a_vx": "vel_x", "a_vy": "vel_y"})
    table = table.sample(frac=1.0, random_state=0)  # row order must not matter
    path = tmp_path / "takes.csv"
    table.to_csv(path, index=False)
    cfg = _tiny(motion.default_config())
    cfg.data.path, cfg.data.episode, cfg.data.time = str(path), "take", "seconds"
    cfg.data.state, cfg.data.action = ["root_x", "root_y"], ["vel_x", "vel_y"]
    cfg.data.test_fraction = 0.2
    results = _train(cfg, tmp_path / "run")
    assert results["data"] == "takes" and results["windows"] == {"train": 16 * 9, "held_out": 4 * 9}
    assert set(results["swd"]) == {"1-step", "2-step"} and results["compared_windows"] == 36
    assert set(results["roughness"]) == {"held-out data", "1-step", "2-step"}
    assert (tmp_path / "run" / "samples.png").stat().st_size > 10_000
    # The checkpoint alone (config, normalizer, columns) reproduces the run's own numbers.
    again = motion.evaluate(tmp_path / "run")
    assert again["swd"] == pytest.approx(results["swd"]) and again["swd_data_floor"] == results["swd_data_floor"]
    with pytest.raises(UserError, match="not episodes"):
        motion.evaluate(tmp_path / "run", episodes=5)
    # The table moved: eval says so and takes its new place.
    moved = path.rename(tmp_path / "moved.csv")
    with pytest.raises(UserError, match="--set data.path=FILE"):
        motion.evaluate(tmp_path / "run")
    assert motion.evaluate(tmp_path / "run", overrides=[f"data.path={moved}"])["swd"] == pytest.approx(results["swd"])
    with pytest.raises(UserError, match="eval.n_samples"):
        motion.evaluate(tmp_path / "run", overrides=[f"data.path={moved}", "eval.n_samples=0"])
    with pytest.raises(UserError, match="accepts eval.. overrides and data.path"):
        motion.evaluate(tmp_path / "run", overrides=["data.horizon=8"])
    # Samples come back as a table in the user's own layout, readable by the same loader.
    csv, png = motion.sample_files(tmp_path / "run", steps=1, n=5, out=tmp_path / "samples")
    assert csv.name == "motion-run-mmf-1step-s0.csv" and png.stat().st_size > 5_000
    store = load_table(csv, "take", "seconds", ["root_x", "root_y"], ["vel_x", "vel_y"])
    assert store.num_episodes == 5 and set(store.lengths) == {16}
    assert np.allclose(np.diff(store.extras["time"][:16]), 0.05)
    assert "0.05," in csv.read_text() and "0.05000000" not in csv.read_text()  # no float noise in the CSV
    assert np.isfinite(store.observations).all() and np.abs(store.observations).max() < 100


def test_a_few_hundred_steps_bring_one_step_samples_towards_held_out_windows(tmp_path):
    cfg = _tiny(motion.default_config(), steps=300)
    cfg.data.gait_episodes = 256
    cfg.train.ema_decay = 0.0  # the raw weights: a short run's EMA would still be the initialisation
    cfg.objective.lambda_warmup = 150
    results = _train(cfg, tmp_path / "run")
    # u ≡ 0 at initialisation, so an untrained model's one-step samples are the noise itself.
    _, held_out = load_windows(cfg.data)
    n = results["compared_windows"]
    noise_distance = sliced_wasserstein(torch.randn(n, 16 * 4, generator=torch.Generator().manual_seed(0)),
                                        held_out.batch(torch.arange(n)).trajectories.flatten(1))
    # Measured 0.57 of the noise distance (this tiny model plateaus there); untrained is 1.
    assert results["swd"]["1-step"] < 0.75 * noise_distance, (results, noise_distance)


def test_cli_motion_errors_are_one_line(tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "mmftraj", "train", "--task", "motion", "--runs-dir",
                               str(tmp_path), *args], capture_output=True, text=True)

    missing = run("--set", f"data.path={tmp_path / 'nope.csv'}")
    assert missing.returncode == 2 and "table not found" in missing.stderr and "Traceback" not in missing.stderr
    assert not (tmp_path / "motion" / "mmf-nope-s0").exists()  # the table is read before the run folder is made
    preset = run("--preset", "walk")
    assert preset.returncode == 2 and "has no presets" in preset.stderr


def test_a_cli_run_resumes_and_its_eval_prints_progress_lines_off_a_terminal(tmp_path):
    """config.yaml holds model.dim_in, filled from the table by the task's complete() before
    runs.py writes it; --resume trains on from that config; `eval` piped to a log prints a plain
    line per sampled step count (every PLAIN_PROGRESS_EVERY_S, here 0 s), as maze2d's rollouts do."""
    def run(*args):
        code = ("import mmftraj.progress as t; t.PLAIN_PROGRESS_EVERY_S = 0.0; "
                "from mmftraj.cli import app; app(prog_name='mmftraj')")
        return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)

    tiny = ["--task", "motion", "--runs-dir", str(tmp_path), "--name", "r", "--set", "train.threads=1"]
    results = tmp_path / "motion" / "r" / "results.json"
    short = run("train", *tiny, "--steps", "2", "--set", "data.gait_episodes=8", "--set", "data.horizon=16",
                "--set", "model.width=16", "--set", "model.depth=1", "--set", "data.test_fraction=0.25",
                "--set", "eval.steps=[1,2]")
    assert short.returncode == 0, short.stderr
    assert json.loads(results.read_text())["windows"] == {"train": 6 * 49, "held_out": 2 * 49}  # 64-step episodes
    config = (results.parent / "config.yaml").read_text()
    assert "dim_in: 4" in config  # the resolved width is written down
    assert [line for line in short.stdout.splitlines() if line.startswith("sampled ")] == [
        "sampled step counts 1/2", "sampled step counts 2/2"]
    resumed = run("train", *tiny, "--resume", "--steps", "4")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(results.read_text())["steps"] == 4 and (results.parent / "config.yaml").read_text() == \
        config.replace("steps: 2\n", "steps: 4\n", 1)
    ev = run("eval", "--task", "motion", "--checkpoint", str(results.parent), "--steps", "1", "--steps", "2",
             "--steps", "4", "--threads", "1")
    assert ev.returncode == 0, ev.stderr
    lines = [line for line in ev.stdout.splitlines() if line.startswith("sampled ")]
    assert lines == [f"sampled step counts {i}/3" for i in (1, 2, 3)], ev.stdout
    assert set(json.loads((results.parent / "eval" / "results.json").read_text())["swd"]) == {
        "1-step", "2-step", "4-step"}


@pytest.mark.parametrize("field,value,message", [
    ("model.patch", 0, "model.patch must be at least 1"), ("model.heads", 0, "model.heads must be at least 1"),
    ("model.width", 0, "model.width must be at least 1"), ("data.horizon", 0, "data.horizon must be at least 1"),
    ("model.patch", 5, "divisible by model.patch 5"), ("eval.n_samples", 0, "eval.n_samples"),
])
def test_impossible_sizes_are_refused_before_any_work(tmp_path, field, value, message):
    cfg = _tiny(motion.default_config())
    section, name = field.split(".")
    setattr(getattr(cfg, section), name, value)
    with pytest.raises(UserError, match=message):  # the task's check: a resolved config, before the table is read
        motion.TASK.check(cfg, None)
    with pytest.raises(UserError, match=message):
        motion.train(cfg, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_episodes_shorter_than_the_horizon_are_counted_and_named(tmp_path, capsys):
    table = gait_table(episodes=10, steps=24, seed=2)
    table = table[~((table["episode"] == "walk_0000") & (table["t"] > 0.5))]  # 11 rows: shorter than 16
    path = tmp_path / "t.csv"
    table.to_csv(path, index=False)
    cfg = _tiny(motion.default_config(), steps=2)
    cfg.data.path, cfg.data.test_fraction = str(path), 0.2
    results = _train(cfg, tmp_path / "run")
    assert results["episodes_shorter_than_horizon"] == 1
    assert "1 of 10 episodes are shorter than data.horizon 16" in capsys.readouterr().out
    cfg.data.horizon = 32
    with pytest.raises(UserError, match=r"no training episode is as long as data.horizon 32 \(the longest has 24"):
        _train(cfg, tmp_path / "run2")


def test_planar_speed_is_distance_per_time_in_the_first_two_state_columns():
    t = np.arange(11) * 0.1
    window = np.stack([3 * t, 4 * t, np.full_like(t, 9.0)], axis=-1)[None]  # 5 m/s; the third column ignored
    assert planar_speed(window, 0.1) == pytest.approx([5.0])
    # Step-to-step jitter barely moves it (a step-by-step path length would read ~3× the speed).
    jitter = np.random.default_rng(0).normal(0, 0.2, size=(200, 65, 2))
    line = np.stack([3 * np.arange(65) * 0.1, 4 * np.arange(65) * 0.1], axis=-1)[None] + jitter
    assert np.median(planar_speed(line, 0.1)) == pytest.approx(5.0, rel=0.03)


def test_low_data_shares_are_nested_and_a_speed_band_never_reaches_training():
    cfg = motion.default_config()
    cfg.data.gait_episodes = 200
    store = load_store(cfg.data)
    train_idx, test_idx = split_episodes(store.num_episodes, 0.1, 0)
    dt = time_step(store)
    speed = {k: planar_speed(store.episode(k)["observations"][None], dt)[0] for k in range(store.num_episodes)}
    cfg.data.hold_out_speed = [1.2, 1.4]
    kept, left_out = training_episodes(store, train_idx, cfg.data)
    assert left_out == {"removed_by_speed_band": len(train_idx) - len(kept), "left_out_by_fraction": 0}
    dropped = set(train_idx) - set(kept)
    assert dropped and all(1.2 <= speed[k] <= 1.4 for k in dropped)
    assert not any(1.2 <= speed[k] <= 1.4 for k in kept)
    assert any(1.2 <= speed[k] <= 1.4 for k in test_idx)  # the evaluation still sees the band
    shares = []
    for fraction in (0.1, 0.5, 1.0):
        cfg.data.fraction = fraction
        shares.append(set(training_episodes(store, train_idx, cfg.data)[0]))
    assert shares[0] < shares[1] < shares[2] == set(kept)
    assert len(shares[0]) == int(np.ceil(0.1 * len(kept)))


@pytest.mark.parametrize("band, message", [([1.4, 1.2], r"\[lo, hi\] with lo < hi"), ([1.0], r"\[lo, hi\]"),
                                           ([0.0, 99.0], "holds out every training episode"),
                                           ([5.0, 6.0], "holds out no training episode")])
def test_a_bad_speed_band_is_refused(band, message):
    cfg = motion.default_config()
    cfg.data.gait_episodes, cfg.data.hold_out_speed = 20, band
    with pytest.raises(UserError, match=message):
        load_windows(cfg.data)


def test_a_run_with_a_held_out_speed_band_reports_the_band_share_of_data_and_samples(tmp_path):
    cfg = _tiny(motion.default_config(), steps=2)
    cfg.data.gait_episodes, cfg.data.hold_out_speed, cfg.data.fraction = 64, [1.2, 1.4], 0.5
    results = _train(cfg, tmp_path / "run")
    band = results["hold_out_speed"]
    assert band["band"] == [1.2, 1.4] and set(band["share"]) == {"held-out data", "training data", "1-step", "2-step"}
    assert band["share"]["training data"] == 0.0 and 0 < band["share"]["held-out data"] < 1
    episodes = results["episodes"]
    assert episodes["removed_by_speed_band"] > 0 and episodes["left_out_by_fraction"] > 0
    assert episodes["train"] + episodes["removed_by_speed_band"] + episodes["left_out_by_fraction"] \
        + episodes["held_out"] == 64
    assert motion.evaluate(tmp_path / "run")["hold_out_speed"] == band  # the checkpoint's config holds the band out


def test_eval_smooth_reports_smoothed_samples_beside_raw_ones_and_sample_writes_them(tmp_path):
    cfg = _tiny(motion.default_config(), steps=2)
    cfg.data.gait_episodes = 32
    raw = _train(cfg, tmp_path / "run")
    assert "smoothed" not in raw
    smooth = motion.evaluate(tmp_path / "run", overrides=["eval.smooth=5"])
    assert smooth["swd"] == pytest.approx(raw["swd"])  # the raw samples are still reported as they were
    assert smooth["smoothed"]["window"] == 5
    for k in ("1-step", "2-step"):  # a 2-step model is nearly noise: smoothing must cut its jitter
        assert smooth["smoothed"]["roughness"][k] < 0.2 * smooth["roughness"][k]
    csv, _ = motion.sample_files(tmp_path / "run", n=4, out=tmp_path / "s", overrides=["eval.smooth=5"])
    assert csv.name == "motion-run-mmf-1step-smooth5-s0.csv"
    for bad in ("eval.smooth=4", "eval.smooth=17", "eval.smooth=-1", "eval.smooth=3"):
        with pytest.raises(UserError, match="eval.smooth must be 0"):
            motion.evaluate(tmp_path / "run", overrides=[bad])
    for bad in ("data.horizon=8", "eval.steps=[4]"):  # sample's step count is --steps
        with pytest.raises(UserError, match="sample accepts only eval.smooth"):
            motion.sample_files(tmp_path / "run", n=4, out=tmp_path / "s", overrides=[bad])
