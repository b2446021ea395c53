"""The maze2d task end to end on a small generated dataset: presets, a short training run,
checkpoint round trip, scored rollouts, dataset generation on first use, and user errors."""

import json
import shutil

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mmftraj.checkpoint import load_checkpoint, resolve_checkpoint, save_checkpoint
from mmftraj.cli import app
from mmftraj.data.generate import generate
from mmftraj.data.maze2d import dataset_path, load_windows
from mmftraj.errors import UserError
from mmftraj.run_request import resolve_config
from mmftraj.runs import prepare_and_train
from mmftraj.tasks import maze2d as M

TINY = ["data.horizon=16", "model.patch=4", "model.width=32", "model.depth=1", "model.heads=2",
        "train.batch_size=32", "train.warmup_steps=10", "train.ckpt_every=0", "eval.train_episodes=2",
        "eval.candidates=4", "eval.latency_repeats=3", "eval.plots=2", "objective.lambda_warmup=50"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("maze2d")
    data = root / "u.hdf5"
    generate("maze2d-umaze-v1", samples=20_000, seed=1, out=data, show_progress=False)
    results = prepare_and_train("maze2d", "umaze", overrides=[*TINY, f"data.path={data}"], steps=150, name="tiny",
                                runs_dir=root / "runs", progress=False)
    return root, data, results


@pytest.mark.parametrize("maze,horizon", [("umaze", 128), ("medium", 256), ("large", 384)])
def test_presets_follow_diffuser_horizons(maze, horizon):
    _, cfg = resolve_config("maze2d", maze)
    assert cfg.data.horizon == horizon and cfg.data.env == f"maze2d-{maze}-v1"
    assert cfg.data.horizon // cfg.model.patch == 32  # same token count, so the same cost per plan
    net = M.build_model(cfg)
    z = torch.zeros(2, horizon, 4)
    u = net(z, torch.zeros(2), torch.ones(2), start=torch.zeros(2, 4), goal=torch.zeros(2, 2))
    assert u.shape == (2, horizon, 4)


def test_no_preset_is_the_umaze_preset():
    from mmftraj.config import to_dict

    assert to_dict(resolve_config("maze2d", None)[1]) == to_dict(resolve_config("maze2d", "umaze")[1])


def test_short_training_lowers_the_loss_and_scores_rollouts(run):
    root, _, results = run
    rows = (root / "runs/maze2d/tiny/metrics.csv").read_text().splitlines()
    mse = [float(r.split(",")[2]) for r in rows[1:]]
    assert mse[-1] < 0.6 * mse[0]
    ev = results["eval"]
    assert ev["episodes"] == 2 and ev["evaluations_per_plan"] == 1 and ev["plan_latency_ms_batch1"] > 0
    scores = np.load(root / "runs/maze2d/tiny/scores.npz")["scores"]
    assert scores.shape == (2,) and ev["score_mean"] == pytest.approx(scores.mean())
    assert (root / "runs/maze2d/tiny/rollouts.png").is_file() and (root / "runs/maze2d/tiny/plans.png").is_file()


def test_checkpoint_round_trip_gives_identical_plans(run, tmp_path):
    root, _, _ = run
    ckpt = resolve_checkpoint(root / "runs/maze2d/tiny")
    net, cfg, norm = M.load_model(ckpt)
    fresh = M.build_model(cfg)
    assert any((a - b).abs().max() > 0
               for a, b in zip(net.state_dict().values(), fresh.state_dict().values(), strict=True))
    _, meta = load_checkpoint(ckpt)
    copy = save_checkpoint(tmp_path, int(meta["step"]), net, None,
                           meta={k: meta[k] for k in ("task", "config", "normalizer")})
    net2, _, norm2 = M.load_model(copy)
    from mmftraj.planning import Planner

    obs, goal = np.array([3.0, 1.0, 0.1, 0.0]), np.array([1.0, 1.0])
    a = Planner(net, norm, candidates=3, selection="first", seed=5).sample_plans(obs, goal)
    b = Planner(net2, norm2, candidates=3, selection="first", seed=5).sample_plans(obs, goal)
    np.testing.assert_array_equal(a, b)


def test_evaluate_k_steps_writes_results(run, tmp_path):
    root, _, _ = run
    res = M.evaluate(root / "runs/maze2d/tiny", steps=[1, 2], episodes=2, seed=3, out=tmp_path,
                     overrides=["eval.plots=1", "eval.latency_repeats=2", "eval.replan_every=50",
                                "eval.replan_missed=false"], progress=False)
    assert res["1-step"]["evaluations_per_plan"] == 1 and res["2-step"]["evaluations_per_plan"] == 2
    assert res["1-step"]["plans_per_episode"] == pytest.approx(6)  # 300 steps / 50
    assert (tmp_path / "steps2" / "rollouts.png").is_file()


def test_missing_default_dataset_is_generated_with_a_message(tmp_path, monkeypatch, capsys):
    import mmftraj.data.default_datasets as defaults
    import mmftraj.data.generate as gen

    monkeypatch.setattr(defaults, "default_path", lambda name: tmp_path / f"{name}.hdf5")
    monkeypatch.setitem(gen.DEFAULT_SAMPLES, "maze2d-umaze-v1", 3000)
    cfg = M.default_config("umaze")
    path = dataset_path(cfg.data, progress=False)
    assert path == tmp_path / "maze2d-umaze-v1.hdf5" and path.is_file()
    assert "generating it now" in capsys.readouterr().out
    assert dataset_path(cfg.data, progress=False) == path and capsys.readouterr().out == ""  # made once, then used
    cfg.data.path = str(tmp_path / "nope.hdf5")
    with pytest.raises(UserError, match="dataset not found"):
        dataset_path(cfg.data)


def cli(*args):
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_bad_inputs_exit_2_with_one_message(run, tmp_path):
    root, _, _ = run
    ckpt = resolve_checkpoint(root / "runs/maze2d/tiny")
    code, out = cli("train", "--task", "maze2d", "--set", f"data.path={tmp_path}/missing.hdf5",
                    "--runs-dir", str(tmp_path))
    assert code == 2 and "dataset not found" in out
    for goal, where in (("[2.0, 1.0]", "inside a wall"), ("[9.0, 9.0]", "outside the maze")):
        code, out = cli("eval", "--task", "maze2d", "--checkpoint", str(ckpt), "--episodes", "1",
                        "--set", f"eval.goal={goal}", "--out", str(tmp_path / "e"))
        assert code == 2 and where in out, out
    # another task's checkpoint
    other = save_checkpoint(tmp_path / "toy", 1, torch.nn.Linear(2, 2), meta={"task": "toy2d", "config": {}})
    code, out = cli("eval", "--task", "maze2d", "--checkpoint", str(other))
    assert code == 2 and "belongs to task 'toy2d'" in out
    # a maze2d checkpoint whose weights do not fit its config (another shape)
    bad = tmp_path / "bad"
    shutil.copytree(ckpt, bad)
    meta = json.loads((bad / "meta.json").read_text())
    meta["config"]["model"]["width"] = 64
    del meta["meta_sha256"]  # as a checkpoint from before meta.json had its checksum
    (bad / "meta.json").write_text(json.dumps(meta))
    code, out = cli("eval", "--task", "maze2d", "--checkpoint", str(bad))
    assert code == 2 and "does not fit this model" in out


def test_a_dataset_generated_for_another_maze_is_refused(run):
    _, data, _ = run  # generated for the U-Maze; its manifest says so
    _, medium = resolve_config("maze2d", "medium", overrides=[f"data.path={data}"])
    with pytest.raises(UserError, match="generated for the umaze maze"):
        load_windows(medium.data, progress=False)
    _, umaze = resolve_config("maze2d", "umaze", overrides=[f"data.path={data}"])
    assert dataset_path(umaze.data) == data and len(load_windows(umaze.data, progress=False)) > 0


def test_random_goals_are_free_points_reproducible_by_episode_seed():
    from mmftraj.envs import make_maze2d
    from mmftraj.planning.rollouts import RolloutConfig, episode_goal

    layout = make_maze2d("maze2d-large-v1").layout
    e = RolloutConfig(goals="random")
    goals = np.array([episode_goal(e, layout, s) for s in range(200)])
    assert all(layout.is_free(g) for g in goals)
    assert np.array_equal(goals, np.array([episode_goal(e, layout, s) for s in range(200)]))  # reproducible
    cells = {tuple(layout.xy_to_cell(g)) for g in goals}
    assert len(cells) > 0.8 * len(layout.free_cells)  # spread over the maze, not one cell
    offsets = goals - np.array([layout.cell_to_xy(layout.xy_to_cell(g)) for g in goals])
    assert np.abs(offsets).max() <= 0.1  # d4rl's U(-0.1, 0.1) noise around the cell centre
    assert episode_goal(RolloutConfig(), layout, 0) is None  # the layout's own goal
    with pytest.raises(UserError, match="exclude each other"):
        episode_goal(RolloutConfig(goals="random", goal=[1.0, 1.0]), layout, 0)


def test_eval_with_random_goals_plans_for_each_episodes_goal(run, tmp_path, monkeypatch):
    import mmftraj.planning.rollouts as R

    root, _, _ = run
    seen = []
    real = R.run_episode
    monkeypatch.setattr(R, "run_episode", lambda env, planner, goal=None, **kw: seen.append(goal) or real(
        env, planner, goal=goal, **kw))
    code, out = cli("eval", "--task", "maze2d", "--checkpoint", str(root / "runs/maze2d/tiny"), "--episodes", "3",
                    "--goals", "random", "--seed", "5", "--set", "eval.plots=0", "--set", "eval.latency_repeats=1",
                    "--out", str(tmp_path / "e"))
    assert code == 0, out
    res = json.loads((tmp_path / "e" / "results.json").read_text())
    one = res[next(k for k in res if k.endswith("-step"))]
    assert one["goals"] == "random" and one["plan_seconds_per_episode"] > 0
    assert len(seen) == 3 and len({tuple(g) for g in seen}) == 3
    code, out = cli("eval", "--task", "maze2d", "--checkpoint", str(root / "runs/maze2d/tiny"), "--episodes", "3",
                    "--goals", "random", "--seed", "5", "--set", "eval.plots=1", "--set", "eval.latency_repeats=1",
                    "--out", str(tmp_path / "p"))
    kept = np.load(tmp_path / "p" / "scores.npz")  # each episode's goal and start, for checking a row later
    assert code == 0 and np.allclose(kept["goals"], np.stack(seen[-3:])) and kept["starts"].shape == (3, 2)
    assert np.allclose(seen[1], R.episode_goal(R.RolloutConfig(goals="random"),
                                               R.make_maze2d("maze2d-umaze-v1").layout, 6))
    code, out = cli("eval", "--task", "maze2d", "--checkpoint", str(root / "runs/maze2d/tiny"), "--goals", "anywhere")
    assert code == 2 and "anywhere" in out and "layout" in out, out
    code, out = cli("eval", "--task", "toy2d", "--checkpoint", str(root / "runs/maze2d/tiny"), "--goals", "random")
    assert code == 2 and "--goals is for --task maze2d" in out


def test_protocols_set_what_they_say_and_plan_as_often_as_they_say(run, tmp_path):
    from mmftraj.planning.rollouts import protocol_overrides

    assert protocol_overrides("default") == []
    assert set(protocol_overrides("diffuser")) == {"eval.replan_every=0", "eval.replan_missed=false", "eval.smooth=1",
                                                   "eval.candidates=1", "eval.truncate=false", "eval.speed=1.0"}
    root, _, _ = run
    common = ["--task", "maze2d", "--checkpoint", str(root / "runs/maze2d/tiny"), "--episodes", "2", "--set",
              "eval.plots=0", "--set", "eval.latency_repeats=1"]
    plans = {}
    for name in ("diffuser", "every-step"):
        code, out = cli("eval", *common, "--protocol", name, "--out", str(tmp_path / name))
        assert code == 0, out
        res = json.loads((tmp_path / name / "results.json").read_text())
        one = res[next(k for k in res if k.endswith("-step"))]
        assert res["protocol"] == name
        plans[name] = one["plans_per_episode"]
        if name == "diffuser":
            assert (one["replan_every"], one["smooth"], one["candidates"], one["replan_missed"]) == (0, 1, 1, False)
    assert plans["diffuser"] == 1  # planned once, tracked open loop
    assert plans["every-step"] > 50  # a plan at every env step until the goal is held (300-step episodes)
    code, out = cli("eval", *common, "--protocol", "sometimes")
    assert code == 2 and "unknown protocol 'sometimes'" in out


def test_piped_eval_prints_plain_progress_lines(run, tmp_path):
    """Off a terminal the rollouts' rich bar printed nothing until the end: a long `eval` piped to
    a log was silent. Now, as `train`, a plain line every PLAIN_PROGRESS_EVERY_S (here 0 s)."""
    import subprocess
    import sys

    root, _, _ = run
    code = ("import mmftraj.progress as t; t.PLAIN_PROGRESS_EVERY_S = 0.0; "
            "from mmftraj.cli import app; app(prog_name='mmftraj')")
    out = subprocess.run([sys.executable, "-c", code, "eval", "--task", "maze2d", "--checkpoint",
                          str(root / "runs/maze2d/tiny"), "--episodes", "3", "--threads", "1", "--out", str(tmp_path),
                          "--set", "eval.latency_repeats=1", "--set", "eval.plots=0"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stdout.splitlines() if line.startswith("rollouts ")]
    assert lines == [f"rollouts maze2d-umaze-v1 {i}/3" for i in (1, 2, 3)], out.stdout
