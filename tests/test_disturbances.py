"""Disturbances of maze2d rollouts (pushes, actuator and observation noise, a moving goal): off they
change nothing, on they do what they say from their own random streams, pushes never end in a
wall, moved goals are free; `mmftraj eval` takes them (and the coherent re-planning options) as
eval.* fields, records network calls per env step, and refuses bad values in one line."""

import json
import re

import numpy as np
import pytest
import torch
from straight_line import StraightLine
from typer.testing import CliRunner

from mmftraj.checkpoint import save_checkpoint
from mmftraj.cli import app
from mmftraj.config import to_dict
from mmftraj.data import Normalizer
from mmftraj.envs import make_maze2d
from mmftraj.envs.disturbances import Disturbances, DisturbedEnv
from mmftraj.errors import UserError
from mmftraj.planning import Planner, run_episode
from mmftraj.planning.rollouts import RolloutConfig, evaluate_planner
from mmftraj.tasks import maze2d as M

ACTIONS = np.random.default_rng(0).uniform(-1, 1, size=(120, 2))  # a fixed action sequence (no feedback)


def states(env, seed=3, actions=ACTIONS):
    """(T + 1, 4) true states and (T + 1, 4) observations of an open-loop episode."""
    obs, info = env.reset(seed=seed)
    true, seen = [info.get("state", obs)], [obs]
    for a in actions:
        obs, _, _, _, info = env.step(a)
        true.append(info.get("state", obs))
        seen.append(obs)
    return np.array(true), np.array(seen)


def test_no_disturbance_is_the_plain_env_bit_for_bit():
    plain, _ = states(make_maze2d("maze2d-umaze-v1"))
    wrapped, seen = states(DisturbedEnv(make_maze2d("maze2d-umaze-v1"), Disturbances()))
    np.testing.assert_array_equal(wrapped, plain)
    np.testing.assert_array_equal(seen, plain)
    assert not Disturbances().active and Disturbances(obs_noise=0.1).active
    assert Disturbances.of(RolloutConfig()) == Disturbances()  # eval's defaults disturb nothing


def test_pushes_never_end_in_a_wall_and_move_the_agent():
    env = DisturbedEnv(make_maze2d("maze2d-umaze-v1"), Disturbances(push_size=50.0, push_rate=1.0))
    pushed, _ = states(env, actions=np.tile([[1.0, 1.0]], (300, 1)))  # driven into a corner, kicked every step
    assert env.pushes == 300
    assert all(env.layout.is_free(p) for p in pushed[:, :2])
    plain, _ = states(make_maze2d("maze2d-umaze-v1"), actions=np.tile([[1.0, 1.0]], (300, 1)))
    assert np.abs(pushed[:, 2:] - plain[:, 2:]).max() > 1.0  # the kicks changed the velocities


def test_a_push_whose_step_ends_in_a_wall_is_refused_as_if_it_never_came():
    def env_at(x):  # a particle whose centre is (artificially) inside a wall square near its edge
        env = make_maze2d("maze2d-umaze-v1")
        env.reset(seed=0, options={"start": (1.0, 1.0)})
        env.set_state([x, 1.0], [0.0, 0.0])
        return env

    a, b = env_at(1.34), env_at(1.34)
    assert not a.layout.is_free([1.34, 1.0])
    *out, applied = a.push_step([0.2, 0.0], [5.0, 0.0])  # into the wall: refused
    assert not applied and not a.layout.is_free(out[0][:2])
    ref = b.step([0.2, 0.0])
    np.testing.assert_array_equal(out[0], ref[0])
    np.testing.assert_array_equal(a.step([0.3, 0.1])[0], b.step([0.3, 0.1])[0])  # and the next step too
    a, b = env_at(1.34), env_at(1.34)
    *out, applied = a.push_step([0.2, 0.0], [-5.0, 0.0])  # out of the wall: applied
    b.data.qvel[:] += [-5.0, 0.0]
    assert applied and a.layout.is_free(out[0][:2])
    np.testing.assert_array_equal(out[0], b.step([0.2, 0.0])[0])


def test_noise_is_what_it_says_and_each_disturbance_draws_from_its_own_stream():
    plain, _ = states(make_maze2d("maze2d-umaze-v1"))
    true, seen = states(DisturbedEnv(make_maze2d("maze2d-umaze-v1"), Disturbances(obs_noise=0.2)))
    np.testing.assert_array_equal(true, plain)  # open loop: noisy observations change no state
    assert 0.17 < (seen - true).std() < 0.23
    small, _ = states(DisturbedEnv(make_maze2d("maze2d-umaze-v1"), Disturbances(action_noise=0.05)))
    large, _ = states(DisturbedEnv(make_maze2d("maze2d-umaze-v1"), Disturbances(action_noise=0.5)))
    assert 0 < np.abs(small - plain).max() < np.abs(large - plain).max()
    pushes = Disturbances(push_size=1.0, push_rate=0.1)
    alone, _ = states(DisturbedEnv(make_maze2d("maze2d-umaze-v1"), pushes))
    both, _ = states(DisturbedEnv(make_maze2d("maze2d-umaze-v1"), Disturbances(push_size=1.0, push_rate=0.1,
                                                                                obs_noise=0.3)))
    np.testing.assert_array_equal(both, alone)  # observation noise took no draw from the pushes


def test_the_goal_moves_once_to_another_free_cell_drawn_from_the_episode_seed():
    d = Disturbances(goal_move_at=5)
    for seed in range(12):
        env = DisturbedEnv(make_maze2d("maze2d-medium-v1"), d)
        _, info = env.reset(seed=seed)
        first, goals = info["goal"], []
        for _ in range(8):
            _, _, _, _, info = env.step([0.0, 0.0])
            goals.append(info["goal"])
        assert all(np.array_equal(g, first) for g in goals[:4])
        moved = goals[4]
        assert all(np.array_equal(g, moved) for g in goals[4:]) and np.array_equal(env.env.goal, moved)
        assert env.layout.is_free(moved) and env.layout.xy_to_cell(moved) != env.layout.xy_to_cell(first)
        again = DisturbedEnv(make_maze2d("maze2d-medium-v1"), Disturbances(goal_move_at=5, obs_noise=0.1))
        again.reset(seed=seed)
        for _ in range(5):
            *_, info = again.step([0.0, 0.0])
        np.testing.assert_array_equal(info["goal"], moved)  # its own stream


IDENTITY = Normalizer("limits", [0.0] * 4, [1.0] * 4)


def test_a_moved_goal_is_planned_for_at_once_and_reached():
    env = DisturbedEnv(make_maze2d("maze2d-open-v0"), Disturbances(goal_move_at=60))
    planner = Planner(StraightLine(), IDENTITY, selection="first")
    ep = run_episode(env, planner, seed=4, keep_plans=10)
    env2 = DisturbedEnv(make_maze2d("maze2d-open-v0"), Disturbances(goal_move_at=60))
    env2.reset(seed=4)
    for _ in range(60):
        *_, info = env2.step([0.0, 0.0])
    new_goal = info["goal"]
    assert [step for step, _ in ep.plans] == [0, 60]  # no re-plans but the one the move asked for
    np.testing.assert_allclose(ep.plans[1][1].states[-1, :2], new_goal)
    assert np.linalg.norm(ep.path[-1, :2] - new_goal) < 0.5  # within the reward radius


def test_plans_start_from_the_observed_state_or_from_the_position_at_rest():
    """plan_velocity="zero" plans from where a pushed agent is, not with the push's velocity."""
    episodes = {}
    for velocity in ("observed", "zero"):
        env = DisturbedEnv(make_maze2d("maze2d-open-v0"), Disturbances(push_size=2.0, push_rate=0.2))
        planner = Planner(StraightLine(), IDENTITY, selection="first")
        episodes[velocity] = run_episode(env, planner, replan_every=1, seed=4, max_steps=30, keep_plans=30,
                                         plan_velocity=velocity)
    for velocity, ep in episodes.items():
        starts = np.stack([plan.states[0] for _, plan in ep.plans])
        visited = ep.path[[step for step, _ in ep.plans]]
        np.testing.assert_array_equal(starts[:, :2], visited[:, :2])
        if velocity == "observed":
            np.testing.assert_array_equal(starts[:, 2:], visited[:, 2:])
            assert np.abs(starts[:, 2:]).max() > 0.5  # pushed
        else:
            assert not starts[:, 2:].any()


def test_evaluate_records_network_calls_per_env_step_and_disturbance_counts():
    e = RolloutConfig(steps=2, candidates=3, selection="first", smooth=1, replan_every=10, replan_missed=False, plots=0,
                      latency_repeats=1, push_size=1.0, push_rate=0.05)
    res = evaluate_planner(StraightLine(), IDENTITY, e, "maze2d-umaze-v1", "mean", episodes=2, seed=0, progress=False)
    assert res["plans_per_episode"] == 30  # 300 env steps, a plan every 10
    assert res["network_calls_per_env_step"] == pytest.approx(2 * 30 / 300)  # candidates share a call
    d = res["disturbances"]
    assert d["push_rate"] == 0.05 and 5 <= d["pushes_per_episode"] <= 30 and d["pushes_refused"] == 0
    assert (res["replan_select"], res["fixed_noise"], res["blend"]) == ("selection", False, 1)


@pytest.mark.parametrize("field,value,message", [
    ("push_size", -1, "eval.push_size must be a number ≥ 0, got -1"),
    ("push_rate", 1.5, "eval.push_rate must be a probability in [0, 1], got 1.5"),
    ("action_noise", float("nan"), "eval.action_noise must be a number ≥ 0, got nan"),
    ("obs_noise", -0.1, "eval.obs_noise must be a number ≥ 0"),
    ("goal_move_at", -3, "eval.goal_move_at must be a whole number of env steps ≥ 0 (0: never), got -3"),
])
def test_bad_disturbances_are_one_error(field, value, message):
    with pytest.raises(UserError, match="^" + re.escape(message)):
        Disturbances(**{field: value})


def test_pointmaze_has_no_pushes_and_goal_moves_stay_inside_the_episode():
    with pytest.raises(UserError, match="eval.push_size/push_rate need a maze2d-\\* env, not PointMaze_UMaze-v3"):
        M.check_eval(RolloutConfig(push_size=1.0, push_rate=0.1), "PointMaze_UMaze-v3")
    M.check_eval(RolloutConfig(obs_noise=0.1, goal_move_at=100), "PointMaze_UMaze-v3")
    with pytest.raises(UserError, match="below maze2d-umaze-v1's episode length 300"):
        M.check_eval(RolloutConfig(goal_move_at=300), "maze2d-umaze-v1")


# -- through the command line ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """An untrained tiny maze2d checkpoint: enough for the CLI's checks and a short rollout."""
    cfg = M.default_config("umaze")
    cfg.data.horizon, cfg.model.width, cfg.model.depth, cfg.model.heads, cfg.model.patch = 16, 32, 1, 2, 4
    torch.manual_seed(0)
    net = M.build_model(cfg)
    norm = Normalizer("limits", [2.0, 2.0, 0.0, 0.0], [1.5, 1.5, 5.0, 5.0])
    root = tmp_path_factory.mktemp("tiny")
    save_checkpoint(root, 1, net, meta={"task": "maze2d", "config": to_dict(cfg), "normalizer": norm.state_dict()})
    return root


def cli(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.mark.parametrize("setting,message", [
    ("eval.push_size=-0.5", "eval.push_size must be a number ≥ 0, got -0.5"),
    ("eval.push_rate=2", "eval.push_rate must be a probability in [0, 1], got 2.0"),
    ("eval.action_noise=-1", "eval.action_noise must be a number ≥ 0"),
    ("eval.obs_noise=.nan", "eval.obs_noise must be a number ≥ 0, got nan"),
    ("eval.goal_move_at=-1", "eval.goal_move_at must be a whole number of env steps ≥ 0"),
    ("eval.goal_move_at=300", "eval.goal_move_at must be below maze2d-umaze-v1's episode length 300"),
    ("eval.blend=0", "eval.blend must be at least 1, got 0"),
    ("eval.lookahead=0", "eval.lookahead must be at least 1, got 0"),
    ("eval.plan_velocity=fast", "config eval.plan_velocity: 'fast' is not one of observed, zero"),
    ("eval.replan_select=far", "config eval.replan_select: 'far' is not one of selection, nearest"),
    ("eval.fixed_noise=3", "config eval.fixed_noise: expected true/false, got 3"),
])
def test_bad_values_exit_2_in_one_line_before_any_work(checkpoint, tmp_path, setting, message):
    code, out = cli("eval", "--task", "maze2d", "--checkpoint", checkpoint, "--episodes", "1",
                    "--out", tmp_path / "e", "--set", setting)
    assert code == 2 and out.strip().count("\n") == 0 and message in " ".join(out.split()), out
    assert not (tmp_path / "e").exists()  # refused before it wrote anything


def test_train_refuses_bad_disturbances_before_a_run_folder_exists(tmp_path):
    code, out = cli("train", "--task", "maze2d", "--steps", "1", "--runs-dir", tmp_path, "--set", "eval.push_rate=-0.1")
    assert code == 2 and "eval.push_rate must be a probability in [0, 1], got -0.1" in out
    assert list(tmp_path.iterdir()) == []


def test_eval_takes_the_coherent_protocol_and_disturbances(checkpoint, tmp_path):
    code, out = cli("eval", "--task", "maze2d", "--checkpoint", checkpoint, "--episodes", "1", "--threads", "1",
                    "--out", tmp_path, "--protocol", "coherent", "--set", "eval.plots=0",
                    "--set", "eval.latency_repeats=1",
                    "--set", "eval.push_size=1.0", "--set", "eval.push_rate=0.1", "--set", "eval.action_noise=0.1",
                    "--set", "eval.obs_noise=0.02", "--set", "eval.goal_move_at=100")
    assert code == 0, out
    res = json.loads((tmp_path / "results.json").read_text())
    one = res["1-step"]
    assert res["protocol"] == "coherent"
    assert (one["replan_every"], one["candidates"], one["replan_select"], one["fixed_noise"], one["blend"]) == (
        1, 8, "nearest", True, 4)
    assert one["plans_per_episode"] == 300 and one["network_calls_per_env_step"] == 1.0  # a plan at every step
    assert one["disturbances"]["goal_move_at"] == 100 and one["disturbances"]["pushes_per_episode"] > 10


def test_a_splits_conditions_refuse_disturbances_and_score_undisturbed_runs():
    from mmftraj.planning.conditions import STANDARD, evaluate_condition

    with pytest.raises(UserError, match="disturb `mmftraj eval` rollouts"):
        evaluate_condition(StraightLine(), IDENTITY, RolloutConfig(obs_noise=0.1), "maze2d-umaze-v1", "mean", STANDARD,
                           episodes=1)
    e = RolloutConfig(selection="first", smooth=1, blend=3, replan_every=8)
    res = evaluate_condition(StraightLine(), IDENTITY, e, "maze2d-open-v0", "mean", STANDARD, episodes=2)
    assert res["episodes"] == 2 and 0 <= res["success_rate"] <= 1
