"""Planning: start/goal pinning under 1- and k-step sampling, plan selection, the tracking
controller, and a scored rollout with a hand-built straight-line model."""

import numpy as np
import pytest
import torch
from torch import nn

from mmftraj.data import Normalizer
from mmftraj.envs import load_layout, make_maze2d
from mmftraj.errors import UserError
from mmftraj.models.start_goal import StartGoalNet
from mmftraj.models.transformer import TransformerConfig, build_transformer
from mmftraj.planning import (
    Planner,
    PlanSettings,
    first_arrival,
    run_episode,
    select_plan,
    tracking_action,
    wall_hits,
)


def random_net(conditioning, horizon=16, patch=4, seed=0, goal_anywhere=False):
    torch.manual_seed(seed)
    cond_dim = 6 + int(goal_anywhere) if conditioning in ("vector", "both") else 0
    tr = build_transformer(TransformerConfig(horizon=horizon, dim_in=4, width=32, depth=1, heads=2, patch=patch,
                                             cond_dim=cond_dim))
    with torch.no_grad():  # zero-initialised output layers would make u ≡ 0; give it a real output
        for p in tr.parameters():
            if p.abs().sum() == 0:
                p.normal_(0, 0.2)
    return StartGoalNet(tr, 4, 2, conditioning, goal_anywhere).eval()


@pytest.mark.parametrize("steps", [1, 3])
@pytest.mark.parametrize("conditioning", ["inpaint", "both"])
def test_inpainted_plans_start_and_end_at_the_condition(conditioning, steps):
    net = random_net(conditioning)
    norm = Normalizer("limits", [2.0, 2.0, 0.0, 0.0], [1.5, 1.5, 5.0, 5.0])
    planner = Planner(net, norm, steps=steps, candidates=5, selection="first")
    obs, goal = np.array([3.0, 1.1, 0.4, -0.3]), np.array([1.0, 1.2])
    raw = torch.randn(5, 16, 4)
    # The network itself (no planner post-processing) keeps the pinned entries exactly.
    start = torch.as_tensor(norm.normalize(obs), dtype=torch.float32).expand(5, -1)
    goal_n = torch.as_tensor(norm.normalize(np.r_[goal, 0, 0])[:2], dtype=torch.float32).expand(5, -1)
    noise = torch.where(net.pinned(5).bool(), net.pinned_values(start, goal_n), raw)
    from mmftraj.core import sample

    x = sample(net, noise, steps=steps, start=start, goal=goal_n)
    torch.testing.assert_close(x[:, 0], start, rtol=0, atol=1e-6)
    torch.testing.assert_close(x[:, -1, :2], goal_n, rtol=0, atol=1e-6)
    assert x[:, 1:-1].std() > 0.05  # the rest is generated, not copied
    plans = planner.sample_plans(obs, goal)
    np.testing.assert_allclose(plans[:, 0], np.broadcast_to(obs, (5, 4)), atol=1e-6)
    np.testing.assert_allclose(plans[:, -1, :2], np.broadcast_to(goal, (5, 2)), atol=1e-5)


@pytest.mark.parametrize("steps", [1, 2])
def test_goal_anywhere_plans_are_at_the_goal_at_their_goal_step(steps):
    net = random_net("both", goal_anywhere=True)
    norm = Normalizer("limits", [2.0, 2.0, 0.0, 0.0], [1.5, 1.5, 5.0, 5.0])
    planner = Planner(net, norm, steps=steps, candidates=8, selection="first", goal_steps=(0.25, 0.5, 1.0))
    idx = planner.goal_indices(8)
    assert idx.tolist() == [4, 4, 4, 8, 8, 8, 15, 15]
    obs, goal = np.array([3.0, 1.1, 0.4, -0.3]), np.array([1.0, 1.2])
    start = torch.as_tensor(norm.normalize(obs), dtype=torch.float32).expand(8, -1)
    goal_n = torch.as_tensor(norm.normalize(np.r_[goal, 0, 0])[:2], dtype=torch.float32).expand(8, -1)
    noise = torch.where(net.pinned(8, idx).bool(), net.pinned_values(start, goal_n, idx), torch.randn(8, 16, 4))
    from mmftraj.core import sample

    x = sample(net, noise, steps=steps, start=start, goal=goal_n, goal_index=idx)
    torch.testing.assert_close(x[torch.arange(8), idx, :2], goal_n, rtol=0, atol=1e-6)
    torch.testing.assert_close(x[:, 0], start, rtol=0, atol=1e-6)
    assert (x[:, -1, :2] - goal_n).abs().max() > 1e-3  # only the asked step is pinned
    mask = net.loss_mask(8, idx)
    assert mask.shape == (8, 16, 4) and mask.sum() == 8 * (16 * 4 - 6)


def test_pinned_inputs_do_not_reach_the_network_and_get_zero_velocity():
    net = random_net("inpaint")
    z = torch.randn(2, 16, 4)
    r, t = torch.tensor([0.2, 0.0]), torch.tensor([0.9, 1.0])
    start, goal = torch.randn(2, 4), torch.randn(2, 2)
    u = net(z, r, t, start=start, goal=goal)
    assert torch.all(u[:, 0] == 0) and torch.all(u[:, -1, :2] == 0) and u[:, -1, 2:].abs().sum() > 0
    z2 = z.clone()
    z2[:, 0] += 5.0
    z2[:, -1, :2] -= 3.0
    torch.testing.assert_close(net(z2, r, t, start=start, goal=goal), u)
    mask = net.loss_mask()
    assert mask.shape == (1, 16, 4) and mask.sum() == 16 * 4 - 6


def test_vector_conditioning_changes_the_output():
    net = random_net("vector")
    z, r, t = torch.randn(1, 16, 4), torch.zeros(1), torch.ones(1)
    a = net(z, r, t, start=torch.zeros(1, 4), goal=torch.zeros(1, 2))
    b = net(z, r, t, start=torch.zeros(1, 4), goal=torch.ones(1, 2))
    assert (a - b).abs().max() > 1e-3


def test_wall_hits_agree_with_layout_is_free():
    lay = load_layout("medium")
    rng = np.random.default_rng(0)
    pts = rng.uniform(-1.0, 8.0, size=(3, 200, 2))
    expected = [sum(not lay.is_free(p) for p in path) for path in pts]
    np.testing.assert_array_equal(wall_hits(lay, pts), expected)


def test_selection_prefers_free_then_early_plans():
    lay = load_layout("umaze")
    goal = np.array([1.0, 1.0])
    line = np.linspace([3.0, 1.0], [1.0, 1.0], 10)  # straight through the wall row 2: short but blocked
    detour = np.array([(3, 1), (3, 2), (3, 3), (2, 3), (1, 3), (1, 2), (1, 1.4), (1, 1), (1, 1), (1, 1.0)])
    slow = detour.copy()
    slow[6] = (1, 1.7)  # arrives within 0.5 of the goal one step later
    plans = np.stack([line, slow, detour])
    assert list(first_arrival(plans, goal, 0.5)) == [7, 7, 6]
    assert wall_hits(lay, plans)[0] > 0 and wall_hits(lay, plans)[1] == 0 and wall_hits(lay, plans)[2] == 0
    assert select_plan(plans, goal, lay) == (2, 6)
    assert select_plan(plans, goal, None) == (0, 7)


def test_tracking_action_is_diffusers_formula():
    obs = np.array([1.0, 2.0, 0.5, -0.5])
    target = np.array([1.1, 1.8, 1.0, 0.0])
    np.testing.assert_allclose(tracking_action(obs, target), [0.1 + 0.5, -0.2 + 0.5])


class StraightLine(nn.Module):
    """Hand-built u with ε - u(ε, 0, 1) = a constant-speed straight line from start to goal
    (velocities consistent with the env's 0.01 s step, as the tracking controller expects)."""

    def __init__(self, horizon):
        super().__init__()
        self.horizon, self.obs_dim, self.goal_dim, self.inpaint, self.goal_anywhere = horizon, 4, 2, False, False

    def forward(self, z, r, t, start, goal):
        s = torch.linspace(0, 1, self.horizon)[None, :, None]
        xy = (1 - s) * start[:, None, :2] + s * goal[:, None]
        vel = ((goal - start[:, :2]) / ((self.horizon - 1) * 0.01))[:, None].expand_as(xy)
        return z - torch.cat([xy, vel], -1)


def test_rollout_with_hand_built_planner_reaches_the_goal_and_scores():
    env = make_maze2d("maze2d-umaze-v1")
    norm = Normalizer("limits", [0.0] * 4, [1.0] * 4)  # identity: line in raw units (velocity 0)
    planner = Planner(StraightLine(64), norm, steps=1, candidates=1, selection="first")
    ep = run_episode(env, planner, replan_every=16, seed=0, start=(1.0, 3.0), goal=(1.0, 1.0), keep_plans=1)
    assert ep.success and ep.episode_return > 200
    assert ep.score == pytest.approx(env.get_normalized_score(ep.episode_return))
    assert ep.score > 100
    assert np.linalg.norm(ep.path[-1, :2] - np.array([1.0, 1.0])) < 0.1
    np.testing.assert_allclose(ep.plans[0][1].states[-1, :2], [1.0, 1.0])



class HalfWay(StraightLine):
    """Plans that stop halfway to the goal: every plan runs out short of it."""

    def forward(self, z, r, t, start, goal):
        return super().forward(z, r, t, start, (start[:, :2] + goal) / 2)


@pytest.mark.parametrize("replan_missed", [False, True])
def test_a_plan_that_runs_out_short_of_the_goal_is_replanned_from_the_agent(replan_missed):
    env = make_maze2d("maze2d-umaze-v1")
    norm = Normalizer("limits", [0.0] * 4, [1.0] * 4)
    planner = Planner(HalfWay(64), norm, steps=1, candidates=1, selection="first")
    ep = run_episode(env, planner, seed=0, start=(1.0, 3.0), goal=(1.0, 1.0), keep_plans=20,
                     replan_missed=replan_missed)
    assert np.linalg.norm(ep.plans[0][1].states[-2, :2] - [1.0, 2.0]) < 0.05  # halfway (then the pinned goal)
    if not replan_missed:  # one plan, then the goal is tracked directly
        assert len(ep.plan_seconds) == 1
        return
    # a new plan from wherever the agent is each time one runs out, until the agent is at the goal
    assert 2 <= len(ep.plan_seconds) <= 8
    for step, plan in ep.plans:
        np.testing.assert_allclose(plan.states[0], ep.path[step])
    later = [step for step, _ in ep.plans[1:]]
    assert all(np.linalg.norm(ep.path[s, :2] - [1.0, 1.0]) > planner.settings.goal_radius for s in later)
    assert np.linalg.norm(ep.path[-1, :2] - [1.0, 1.0]) < 0.1


def test_smoothing_is_a_moving_average_that_keeps_the_start():
    from mmftraj.planning import smooth_plans

    x = np.random.default_rng(1).normal(size=(2, 30, 4))
    y = smooth_plans(x, 7)
    padded = np.concatenate([np.repeat(x[:, :1], 3, 1), x, np.repeat(x[:, -1:], 3, 1)], axis=1)
    expected = np.stack([[np.convolve(padded[b, :, d], np.ones(7) / 7, mode="valid") for d in range(4)]
                         for b in range(2)]).transpose(0, 2, 1)
    np.testing.assert_allclose(y[:, 1:], expected[:, 1:], atol=1e-12)
    np.testing.assert_array_equal(y[:, 0], x[:, 0])
    assert smooth_plans(x, 1) is x


def test_plan_settings_are_the_rollout_configs_fields_of_the_same_names():
    from mmftraj.planning.rollouts import RolloutConfig, make_planner

    e = RolloutConfig(steps=2, candidates=3, selection="first", goal_radius=0.3, truncate=False, goal_steps=[0.5, 1.0],
                      smooth=5)
    norm = Normalizer("limits", [0.0] * 4, [1.0] * 4)
    planner = make_planner(StraightLine(16), norm, e, "euler", load_layout("umaze"))
    assert planner.settings == PlanSettings(steps=2, mode="euler", candidates=3, selection="first", goal_radius=0.3,
                                            truncate=False, goal_steps=(0.5, 1.0), smooth=5)
    assert make_planner(StraightLine(16), norm, e, "mean", None, candidates=1).settings.candidates == 1
    again = Planner(StraightLine(16), norm, planner.settings, steps=1)  # keywords replace single fields
    assert (again.settings.steps, again.settings.candidates, again.settings.mode) == (1, 3, "euler")
    for bad, message in (({"selection": "best"}, "unknown plan selection 'best'"),
                         ({"candidates": 0}, "eval.candidates must be at least 1")):
        with pytest.raises(UserError, match=message):
            Planner(StraightLine(16), norm, planner.settings, **bad)
