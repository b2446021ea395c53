"""Push-T: the shipped demonstrations, the zarr reader, gym-pusht started and observed as Diffusion
Policy does it, chunk tables, score aggregation, and `train`/`eval` through the CLI."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from mmftraj.data.pusht import PushTDemos, export_lowdim, load_demos, split_episodes
from mmftraj.envs.pusht import MAX_STEPS, PushTBatch, dp_start, observe
from mmftraj.errors import UserError
from mmftraj.tasks import pusht

pytest.importorskip("gym_pusht")


@pytest.fixture(scope="module")
def demos():
    return load_demos()


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "mmftraj", *args], capture_output=True, text=True, cwd=cwd)


def one_line_error(out, expected):
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 2 and len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert expected in lines[0], lines[0]


# -- data ------------------------------------------------------------------------------------------
def test_shipped_demonstrations_are_diffusion_policys(demos):
    assert demos.episodes == 206 and demos.state.shape == (25650, 5) and demos.action.shape == (25650, 2)
    assert demos.keypoint.shape == (25650, 9, 2) and demos.episode_ends[-1] == 25650
    assert demos.lengths().min() >= 1


def test_observation_keypoints_match_the_recorded_ones(demos):
    """The nine keypoints computed from the recorded block pose are the recorded keypoints."""
    err = np.abs(observe(demos.state)[:, :18] - demos.keypoint.reshape(-1, 18)).max(axis=1)
    assert np.median(err) < 0.05 and np.percentile(err, 99) < 0.1
    assert np.array_equal(observe(demos.state)[:, 18:], demos.state[:, :2].astype(np.float64))


def test_replaying_demonstrations_reproduces_their_states(demos):
    """Started at the recorded state and driven by the recorded actions, gym-pusht retraces the
    recorded states (< 1 px): the start correction and the physics are Diffusion Policy's."""
    envs = PushTBatch(3)
    starts = demos.state[demos.starts[:3]]
    envs.reset(starts)
    assert np.abs(envs.state - starts).max() < 1e-3
    worst = 0.0
    for t in range(demos.lengths()[:3].max() - 1):
        live = [k for k in range(3) if t < demos.lengths()[k] - 1]
        actions = np.stack([demos.action[demos.starts[k] + min(t, demos.lengths()[k] - 1)] for k in range(3)])
        state = envs.step(actions)
        for k in live:
            worst = max(worst, np.abs(state[k, :4] - demos.state[demos.starts[k] + t + 1, :4]).max())
    assert worst < 1.0


def test_test_starts_follow_diffusion_policys_recipe():
    for seed in (100000, 100001, 100002):
        rs = np.random.RandomState(seed=seed)
        expected = [rs.randint(50, 450), rs.randint(50, 450), rs.randint(100, 400), rs.randint(100, 400),
                    rs.randn() * 2 * np.pi - np.pi]
        assert np.array_equal(dp_start(seed), np.array(expected, dtype=np.float64))
    envs = PushTBatch(3)
    starts = np.stack([dp_start(s) for s in (100000, 100001, 100002)])
    state = envs.reset(starts)  # the block's body sits at the drawn pose (angle modulo 2π)
    assert np.abs(state[:, :4] - starts[:, :4]).max() < 1e-6
    assert np.abs(np.angle(np.exp(1j * (state[:, 4] - starts[:, 4])))).max() < 1e-9


def tiny_demos(lengths=(5, 3)):
    n = sum(lengths)
    rng = np.random.default_rng(0)
    return {"state": rng.uniform(100, 400, (n, 5)).astype(np.float32), "action": rng.uniform(0, 512, (n, 2)),
            "keypoint": rng.uniform(0, 512, (n, 9, 2)).astype(np.float32), "n_contacts": np.zeros((n, 1)),
            "episode_ends": np.cumsum(lengths)}


def write_zarr(path, arrays):
    zarr = pytest.importorskip("zarr")
    root = zarr.open_group(str(path), mode="w")
    for key, value in arrays.items():
        root.create_dataset(f"meta/{key}" if key == "episode_ends" else f"data/{key}", data=value)
    return path


def test_zarr_reader_reads_diffusion_policys_layout(tmp_path):
    arrays = tiny_demos()
    store = write_zarr(tmp_path / "mine.zarr", arrays)
    demos = load_demos(store)
    assert isinstance(demos, PushTDemos) and demos.episodes == 2
    assert np.array_equal(demos.starts, [0, 5]) and np.allclose(demos.action, arrays["action"])
    assert np.array_equal(demos.episode(1)["state"], arrays["state"][5:])
    out = export_lowdim(store, tmp_path / "mine.npz")  # the shipped form round-trips
    again = load_demos(out)
    assert np.array_equal(again.keypoint, demos.keypoint) and np.array_equal(again.episode_ends, demos.episode_ends)


@pytest.mark.parametrize("damage,expected", [
    (lambda a: a.pop("keypoint"), "lacks keypoint"),
    (lambda a: a.update(action=np.zeros((8, 3))), "action has shape (8, 3), expected (8, 2)"),
    (lambda a: a.update(episode_ends=np.array([5, 9])), "episode_ends must increase strictly and end at the 8"),
    (lambda a: a.update(episode_ends=np.array([5.0, 8.0])), "episode_ends must be a non-empty 1-D integer array"),
    (lambda a: a["state"].__setitem__((0, 0), np.nan), "state holds non-numeric or non-finite values"),
])
def test_bad_recordings_are_one_clear_error(tmp_path, damage, expected):
    arrays = tiny_demos()
    damage(arrays)
    with pytest.raises(UserError, match=None) as err:
        load_demos(write_zarr(tmp_path / "bad.zarr", arrays))
    assert expected in str(err.value)


def test_missing_and_corrupt_stores(tmp_path):
    with pytest.raises(UserError, match="Push-T data not found"):
        load_demos(tmp_path / "nowhere.zarr")
    (tmp_path / "empty.zarr").mkdir()
    with pytest.raises(UserError, match="not in Diffusion Policy's layout|not a readable zarr store"):
        load_demos(tmp_path / "empty.zarr")
    store = write_zarr(tmp_path / "broken.zarr", tiny_demos())
    (store / "data" / "state" / "0.0").write_bytes(b"\x00garbage" * 7)
    with pytest.raises(UserError, match="not a readable zarr store"):
        load_demos(store)
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(UserError, match="not an .npz archive"):
        load_demos(tmp_path / "bad.npz")


def test_episode_split_is_nested_and_keeps_validation_out():
    small, val = split_episodes(206, 10, 4, seed=3)
    large, val2 = split_episodes(206, 90, 4, seed=3)
    assert np.array_equal(val, val2) and set(small) <= set(large) and not set(large) & set(val)
    assert not np.array_equal(split_episodes(206, 90, 4, seed=4)[0], large)
    with pytest.raises(UserError, match="exceed the 206 episodes"):
        split_episodes(206, 205, 4, seed=0)


def test_an_angle_band_holds_out_training_episodes_and_picks_test_starts(demos):
    assert pusht.in_band(np.radians([10, 350, 200]), [340, 20]).tolist() == [True, True, False]
    cfg = pusht.Config()
    cfg.data.hold_out_angle = [0, 90]
    cfg.data.train_episodes = 150
    train, val = pusht.episode_split(cfg, demos)
    first = demos.state[demos.starts, 4]
    assert not pusht.in_band(first[np.r_[train, val]], [0, 90]).any() and len(train) == 150
    cfg.eval.angle, cfg.eval.test_starts = [0, 90], 5
    seeds = pusht.test_seeds(cfg.eval)
    assert len(seeds) == 5 and seeds[0] >= 100000
    assert pusht.in_band(np.array([dp_start(s)[4] for s in seeds]), [0, 90]).all()
    assert pusht.test_seeds(pusht.EvalConfig(test_starts=3)) == [100000, 100001, 100002]
    cfg.eval.angle = [10]
    with pytest.raises(UserError, match="eval.angle must be empty or two angles"):
        pusht.check_config(cfg)


def test_chunk_tables_repeat_the_edges():
    """Histories repeat an episode's first step, chunks its last; no row crosses episodes."""
    arrays = tiny_demos((5, 3))
    demos = PushTDemos(arrays["state"], arrays["action"].astype(np.float32), arrays["keypoint"],
                       arrays["episode_ends"])
    obs_idx, act_idx = pusht.chunk_tables(demos, np.array([0, 1]), obs_steps=2, horizon=4, action_steps=2)
    assert obs_idx.tolist()[:4] == [[0, 0], [0, 1], [1, 2], [2, 3]]
    assert act_idx.tolist()[:4] == [[0, 1, 2, 3], [1, 2, 3, 4], [2, 3, 4, 4], [3, 4, 4, 4]]
    assert obs_idx.tolist()[4:] == [[5, 5], [5, 6]] and act_idx.tolist()[4:] == [[5, 6, 7, 7], [6, 7, 7, 7]]


def test_score_is_the_mean_of_each_episodes_best_reward():
    out = pusht.summary(np.array([1.0, 0.5, 0.0, 0.5]), np.array([True, False, False, False]))
    assert out["score"] == 0.5 and out["success"] == 0.25 and out["episodes"] == 4
    assert out["score_se"] == pytest.approx(np.std([1, 0.5, 0, 0.5], ddof=1) / 2)


def test_episodes_keep_their_best_reward_and_end_at_the_limit():
    envs = PushTBatch(2)
    envs.reset(np.stack([dp_start(0), dp_start(1)]))
    rewards = []
    for _ in range(MAX_STEPS + 5):
        envs.step(np.array([[256.0, 256.0], [100.0, 100.0]]))
    assert envs.done.all() and (envs.steps <= MAX_STEPS).all()
    rewards.append(envs.best)
    assert (envs.best >= 0).all() and (envs.best <= 1).all()


def test_checkpoint_choice_never_uses_the_test_starts():
    cfg = pusht.Config()
    cfg.eval.select_seed = 100010
    with pytest.raises(UserError, match="share 40 seed"):
        pusht.check_config(cfg)
    cfg = pusht.Config()  # with an angle band the test seeds run past test_seed + test_starts
    cfg.eval.angle, cfg.eval.test_starts, cfg.eval.select_seed = [0, 90], 2, 100003
    with pytest.raises(UserError, match="share 1 seed"):
        pusht.check_config(cfg)
    pusht.check_config(cfg, selecting=False)  # `eval` chooses nothing: no overlap to refuse
    cfg = pusht.Config()
    cfg.eval.action_steps = 17
    with pytest.raises(UserError, match="eval.action_steps must be 1 to data.horizon"):
        pusht.check_config(cfg)


# -- the command line ------------------------------------------------------------------------------
TINY = ["--set", "train.batch_size=8", "--set", "model.width=16", "--set", "model.depth=1", "--set",
        "eval.every=2", "--set", "eval.test_starts=2", "--set", "eval.select_starts=2", "--set", "train.threads=1"]


def test_train_then_eval_through_the_cli(tmp_path):
    out = run("train", "--task", "pusht", "--steps", "4", "--name", "t", "--runs-dir", str(tmp_path), *TINY)
    assert out.returncode == 0, out.stderr
    run_dir = tmp_path / "pusht" / "t"
    results = json.loads((run_dir / "results.json").read_text())
    assert results["evaluations"] == 2 and results["selected_step"] in (2, 4) and results["train_episodes"] == 90
    assert results["mean_last_n"] == 2 and 0 <= results["mean_last_test_score"] <= 1
    assert (run_dir / "selected" / "checkpoints").is_dir() and (run_dir / "evals.csv").is_file()
    out = run("eval", "--task", "pusht", "--checkpoint", str(run_dir), "--episodes", "2", "--threads", "1",
              "--set", "eval.shown=2")
    assert out.returncode == 0, out.stderr
    # Piped, the rollouts print plain progress lines (the batch's env step, every 10 s and at the end).
    lines = [line for line in out.stdout.splitlines() if line.startswith("rollouts pusht ")]
    assert lines and lines[-1] == "rollouts pusht (2 starts) at step 300/300", out.stdout
    ev = json.loads((run_dir / "eval" / "results.json").read_text())
    assert ev["1-step"]["episodes"] == 2 and 0 <= ev["1-step"]["score"] <= 1 and ev["1-step"]["chunk_ms"] > 0
    assert (run_dir / "eval" / "rollouts.gif").stat().st_size > 0 and (run_dir / "eval" / "rollouts.png").is_file()


def test_no_validation_episodes_trains(tmp_path):
    out = run("train", "--task", "pusht", "--steps", "2", "--name", "v0", "--runs-dir", str(tmp_path),
              "--set", "data.val_episodes=0", *TINY)
    assert out.returncode == 0, out.stderr


def test_a_refused_eval_leaves_no_output_folder(tmp_path):
    assert run("train", "--task", "pusht", "--steps", "2", "--name", "e", "--runs-dir", str(tmp_path), *TINY
               ).returncode == 0
    run_dir = tmp_path / "pusht" / "e"
    for bad in (["--episodes", "0"], ["--steps", "0"], ["--set", "eval.angle=[30]"]):
        out = run("eval", "--task", "pusht", "--checkpoint", str(run_dir), *bad)
        assert out.returncode == 2 and not (run_dir / "eval").exists(), (bad, out.stderr)


def test_bad_data_path_is_one_line_and_leaves_no_run(tmp_path):
    out = run("train", "--task", "pusht", "--steps", "2", "--name", "bad", "--runs-dir", str(tmp_path),
              "--set", f"data.path={tmp_path / 'missing.zarr'}", *TINY)
    one_line_error(out, "Push-T data not found")
    assert not (tmp_path / "pusht" / "bad").exists()


def test_missing_gym_pusht_is_one_line(tmp_path):
    code = ("import sys; sys.modules['gym_pusht'] = None; from mmftraj.cli import app; "
            f"app(['train', '--task', 'pusht', '--steps', '2', '--runs-dir', {str(tmp_path)!r}])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    one_line_error(out, "pip install 'mmftraj[pusht]'")
    assert not (tmp_path / "pusht" / "mmf-s0").exists()


def test_policy_is_one_network_evaluation_per_chunk():
    cfg = pusht.Config()
    cfg.model.width, cfg.model.depth = 16, 1
    net = pusht.build_model(cfg)
    calls = []
    net.register_forward_hook(lambda *a: calls.append(1))
    from mmftraj.data import Normalizer
    from mmftraj.planning.chunks import ChunkPolicy

    policy = ChunkPolicy(net, Normalizer("limits", np.zeros(20), np.ones(20)), Normalizer("limits", [256, 256],
                         [256, 256]), cfg.data.horizon, 2)
    chunk = policy(np.zeros((3, cfg.data.obs_steps, 20)))
    assert chunk.shape == (3, 16, 2) and len(calls) == 1
    assert torch.isfinite(torch.as_tensor(chunk)).all()


def test_a_resumed_run_forgets_evaluations_and_chosen_weights_after_its_checkpoint(tmp_path):
    cfg = pusht.Config()
    rows = "\n".join(f"{s},0.{s},0,0.{s},0,0.1" for s in (1, 2, 3, 4))
    (tmp_path / "evals.csv").write_text(",".join(pusht.EVAL_FIELDS) + "\n" + rows + "\n")
    chosen = tmp_path / "selected" / "checkpoints" / "step_00000004"
    chosen.mkdir(parents=True)
    (chosen / "meta.json").write_text("{}")
    (chosen / "tensors.safetensors").write_bytes(b"")
    ev = pusht.TrainingEvaluator(cfg, tmp_path, None, None, None, "mean", {})
    ev.resume(4)
    assert len(ev.rows) == 4 and chosen.is_dir()
    ev.resume(2)
    assert [r["step"] for r in ev.rows] == [1, 2] and not (tmp_path / "selected").exists()
    assert (tmp_path / "evals.csv").read_text().count("\n") == 3
