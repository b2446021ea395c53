"""gymnasium-robotics' PointMaze: the frame shared with maze2d, the evaluation env, the Minari
dataset recipe, loading, a short training run scored in PointMaze_*-v3, and bad input."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("gymnasium_robotics")
pytest.importorskip("minari")

from mmftraj.cli import app  # noqa: E402
from mmftraj.data import load_episodes  # noqa: E402
from mmftraj.data.pointmaze import generate_pointmaze  # noqa: E402
from mmftraj.envs import WaypointController, load_layout, make_maze2d  # noqa: E402
from mmftraj.envs.pointmaze import (  # noqa: E402
    POINTMAZE,
    Frame,
    PointMazeEnv,
    PointMazeExpert,
    compute_reference_returns,
    make_gym_env,
    reference_returns,
)


@pytest.mark.parametrize("env_id", list(POINTMAZE))
def test_the_frame_puts_every_pointmaze_cell_in_the_same_maze2d_cell(env_id):
    env = make_gym_env(env_id, evaluation=True)
    maze, frame = env.unwrapped.maze, Frame.of(env)
    layout = load_layout(POINTMAZE[env_id].maze)
    assert (frame.x_center, frame.y_center) == (layout.shape[1] / 2, layout.shape[0] / 2)
    for i in range(layout.shape[0]):
        for j in range(layout.shape[1]):
            inside = maze.cell_rowcol_to_xy(np.array([i, j])) + np.array([0.4, -0.4])  # near a corner of the cell
            assert layout.xy_to_cell(frame.position_in(inside)) == (i, j)
            assert layout.walls[i, j] == (maze.maze_map[i][j] == 1)
    xy = np.random.default_rng(0).normal(size=(10, 2))
    assert np.allclose(frame.position_out(frame.position_in(xy)), xy)
    assert np.allclose(frame.vector_out(frame.vector_in(xy)), xy)
    env.close()


def test_the_maze2d_controller_drives_pointmaze_through_the_frame():
    """The d4rl controller, in maze2d's frame, reaches random goals in PointMaze: positions,
    velocities and actions turn consistently."""
    env = make_maze2d("PointMaze_Medium-v3")
    assert isinstance(env, PointMazeEnv) and env.max_episode_steps == 600
    reached = 0
    for seed in range(4):
        goal = env.layout.cell_to_xy(env.layout.free_cells[(5 * seed) % len(env.layout.free_cells)])
        obs, info = env.reset(seed=seed, options={"goal": goal})
        assert np.allclose(info["goal"], goal) and env.layout.is_free(obs[:2])
        ctrl = WaypointController(env.layout, np.random.default_rng(seed))
        total = 0.0
        for _ in range(env.max_episode_steps):
            obs, reward, *_ = env.step(ctrl(obs, goal))
            total += reward
        reached += total > 0
        assert np.linalg.norm(obs[:2] - goal) < 0.5
    assert reached == 4
    start = env.layout.cell_to_xy((1, 1))
    obs, _ = env.reset(seed=0, options={"start": start, "qvel": (0.5, 0.0)})
    assert np.allclose(obs, [*start, 0.5, 0.0])


def test_reference_returns_come_from_the_recipe_and_score_like_d4rl():
    lo, hi = reference_returns("PointMaze_UMaze-v3")
    assert 0 < lo < hi
    env = make_maze2d("PointMaze_UMaze-v3")
    assert env.get_normalized_score(hi) == pytest.approx(100) and env.get_normalized_score(lo) == pytest.approx(0)
    quick = compute_reference_returns("PointMaze_UMaze-v3", episodes=3)
    assert quick["ref_max_score"] > quick["ref_min_score"] >= 0


def test_the_recipe_writes_a_minari_dataset_that_loads_in_maze2d_frame(tmp_path):
    made = generate_pointmaze("PointMaze_UMaze-v3", steps=3000, seed=1, root=tmp_path, progress=False)
    import minari

    dataset = minari.MinariDataset(made.path / "data")
    lo, hi = reference_returns("PointMaze_UMaze-v3")
    assert dataset.spec.env_spec.id == "PointMaze_UMaze-v3" and dataset.total_steps == 3000
    assert minari.get_normalized_score(dataset, np.array([lo, hi])) == pytest.approx([0, 1])  # Minari's own scoring
    episodes = list(dataset.iterate_episodes())
    assert len(episodes) == made.episodes > 5
    assert all(ep.truncations[-1] and ep.infos["success"][-1] for ep in episodes[:-1])  # split where goals are reached
    first = episodes[0]
    assert set(first.observations) == {"observation", "achieved_goal", "desired_goal"}
    assert np.allclose(episodes[1].observations["observation"][0], first.observations["observation"][-1])
    assert np.abs(first.actions).max() <= 1.0
    store = load_episodes(made.path)
    frame = Frame(x_center=2.5, y_center=2.5)
    assert store.meta["env_id"] == "PointMaze_UMaze-v3"
    assert np.allclose(store.observations[: len(first.actions)],
                       frame.observation_in(first.observations["observation"][:-1]), atol=1e-5)
    layout = load_layout("umaze")
    assert all(layout.is_free(p) for p in store.observations[:, :2])
    again = generate_pointmaze("PointMaze_UMaze-v3", steps=3000, seed=1, root=tmp_path / "b", progress=False)
    assert np.array_equal(load_episodes(again.path).observations, store.observations)  # reproducible by seed


def test_the_expert_reaches_the_goal_in_the_evaluation_env():
    env = make_gym_env("PointMaze_Large-v3", evaluation=True)
    obs, _ = env.reset(seed=3)
    expert = PointMazeExpert(env, np.random.default_rng(0))
    total = 0.0
    for _ in range(800):
        obs, reward, *_ = env.step(expert(obs))
        total += reward
    assert total > 0
    env.close()


def test_train_on_a_pointmaze_dataset_and_score_in_pointmaze(tmp_path):
    runner = CliRunner()
    made = runner.invoke(app, ["data", "generate", "PointMaze_UMaze-v3", "--samples", "4000", "--out",
                               str(tmp_path / "ds")])
    assert made.exit_code == 0, made.output
    path = tmp_path / "ds" / "mmftraj" / "pointmaze-umaze-v0"
    tiny = ["--set", "data.horizon=16", "--set", "model.patch=4", "--set", "model.width=32", "--set", "model.depth=1",
            "--set", "model.heads=2", "--set", "train.batch_size=32", "--set", "train.ckpt_every=0", "--set",
            "eval.train_episodes=2", "--set", "eval.latency_repeats=1", "--set", "eval.plots=1", "--set",
            "train.threads=1", "--steps", "30", "--runs-dir", str(tmp_path / "runs")]
    out = runner.invoke(app, ["train", "--task", "maze2d", "--set", "data.env=PointMaze_UMaze-v3", "--set",
                              f"data.path={path}", "--name", "p", *tiny])
    assert out.exit_code == 0, out.output
    res = json.loads((tmp_path / "runs" / "maze2d" / "p" / "results.json").read_text())
    assert res["eval"]["env"] == "PointMaze_UMaze-v3" and np.isfinite(res["eval"]["score_mean"])
    ev = runner.invoke(app, ["eval", "--task", "maze2d", "--checkpoint", str(tmp_path / "runs" / "maze2d" / "p"),
                             "--episodes", "2", "--goals", "random", "--set", "eval.plots=0", "--set",
                             "eval.latency_repeats=1", "--out", str(tmp_path / "e"), "--threads", "1"])
    assert ev.exit_code == 0, ev.output
    evaluated = json.loads((tmp_path / "e" / "results.json").read_text())
    assert evaluated[next(k for k in evaluated if k.endswith("-step"))]["threads"] == 1
    # a dataset of another maze, a maze2d dataset for PointMaze, and a PointMaze id that does not exist
    other = runner.invoke(app, ["train", "--task", "maze2d", "--maze", "medium",
                                "--set", "data.env=PointMaze_Medium-v3",
                                "--set", f"data.path={path}", "--name", "q", *tiny])
    assert (other.exit_code == 2
            and "collected in PointMaze_UMaze-v3, but data.env is PointMaze_Medium-v3" in other.output)
    wrong_maze = runner.invoke(app, ["train", "--task", "maze2d", "--maze", "large", "--set",
                                     "data.env=PointMaze_UMaze-v3", "--set", f"data.path={path}", "--name", "r", *tiny])
    assert wrong_maze.exit_code == 2 and "is the umaze maze but the preset is large" in wrong_maze.output
    no_maze = runner.invoke(app, ["train", "--task", "maze2d", "--set", "data.env=PointMaze_Large-v3"])
    assert no_maze.exit_code == 2 and "add --maze large" in no_maze.output
    root = runner.invoke(app, ["train", "--task", "maze2d", "--set", "data.env=PointMaze_UMaze-v3", "--set",
                               f"data.path={tmp_path / 'ds'}", "--name", "s", *tiny])
    assert (root.exit_code == 2 and "holds Minari datasets, not one" in root.output
            and "pointmaze-umaze-v0" in root.output)
    missing = runner.invoke(app, ["train", "--task", "maze2d", "--set", "data.env=PointMaze_UMaze-v3", "--set",
                                  f"data.path={tmp_path / 'nope'}", "--name", "t", *tiny])
    assert missing.exit_code == 2 and "writes DIR/mmftraj/pointmaze-umaze-v0" in missing.output
    bad = runner.invoke(app, ["data", "generate", "PointMaze_Huge-v3", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "PointMaze_Huge-v3" in bad.output
    bad = runner.invoke(app, ["train", "--task", "maze2d", "--set", "data.env=PointMaze_Huge-v3"])
    assert bad.exit_code == 2 and "PointMaze_UMaze-v3" in bad.output
