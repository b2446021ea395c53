"""Planning: start/goal pinning under 1- and k-step sampling, plan selection, the tracking
controller, and a scored rollout with a hand-built straight-line model."""

import numpy as np
import pytest
import torch
from straight_line import StraightLine

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


def test_smooth_start_extrapolated_keeps_a_straight_plan_where_holding_pulls_its_start_ahead():
    from mmftraj.planning import smooth_plans

    line = np.linspace(0.0, 2.9, 30)[None, :, None] * np.ones((1, 1, 4))  # 0.1 per step in every component
    kept = smooth_plans(line, 11, "extrapolate")
    np.testing.assert_allclose(kept[:, :25], line[:, :25], atol=1e-12)  # exact up to the padded end
    held = smooth_plans(line, 11)
    assert held[0, 1, 0] == pytest.approx(2.1 / 11)  # (5 copies of 0 + 0.1 + ... + 0.6) / 11: 1.9 steps out
    short = np.random.default_rng(0).normal(size=(1, 3, 4))  # shorter than the half-width: reflection clipped
    assert np.isfinite(smooth_plans(short, 11, "extrapolate")).all()
    with pytest.raises(UserError, match="eval.smooth_start"):
        smooth_plans(line, 11, "mirror")
    with pytest.raises(UserError, match="eval.smooth_start"):
        PlanSettings(smooth_start="mirror")


def test_a_replan_with_remaining_goal_step_arrives_when_the_old_plan_would():
    net = random_net("both", goal_anywhere=True)
    norm = Normalizer("limits", [2.0, 2.0, 0.0, 0.0], [1.5, 1.5, 5.0, 5.0])
    planner = Planner(net, norm, candidates=2, selection="first", replan_goal_step="remaining", goal_radius=1e-3)
    obs, goal = np.array([3.0, 1.1, 0.4, -0.3]), np.array([1.0, 1.2])
    previous = np.zeros((9, 4))  # the old plan arrives 8 steps from now
    plan = planner.plan(obs, goal, previous)
    np.testing.assert_allclose(plan.candidates[:, 8, :2], np.broadcast_to(goal, (2, 2)), atol=1e-5)
    assert plan.end == 8  # its first arrival
    near = planner.plan(obs, goal, np.zeros((2, 4)))  # 1 step left: clipped to the shortest trained, H/8
    np.testing.assert_allclose(near.candidates[:, 16 // 8, :2], np.broadcast_to(goal, (2, 2)), atol=1e-5)
    first = planner.plan(obs, goal)  # no plan being executed: the goal steps of the settings
    np.testing.assert_allclose(first.candidates[0, round(0.25 * 15), :2], goal, atol=1e-5)
    with pytest.raises(UserError, match="model.goal_anywhere"):
        Planner(random_net("both"), norm, replan_goal_step="remaining")
    with pytest.raises(UserError, match="eval.replan_goal_step"):
        PlanSettings(replan_goal_step="soon")


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


# -- coherent re-planning: nearest candidate, fixed noise, blended plans ----------------------------
class Wiggly(StraightLine):
    """Straight lines with what one-step samples have: a per-candidate sideways shift (a 'mode')
    and step-to-step jitter, both from the noise: x = line + 0.3·ε_0 + 0.03·ε_t on positions."""

    def forward(self, z, r, t, start, goal):
        shift = torch.zeros_like(z)
        shift[..., :2] = 0.3 * z[:, :1, :2] + 0.03 * z[..., :2]
        return super().forward(z, r, t, start, goal) - shift


def roughness(path: np.ndarray) -> float:
    """Mean size of the positions' second differences: how much a path jerks from step to step."""
    return float(np.linalg.norm(np.diff(path[:, :2], n=2, axis=0), axis=-1).mean())


def test_nearest_plan_is_the_candidate_closest_over_the_overlapping_steps():
    from mmftraj.planning.planner import nearest_plan

    base = np.zeros((4, 6, 4))
    base[..., 0] = np.arange(6)
    plans = base.copy()
    plans[0, :, 1] = 0.5  # off by 0.5 everywhere
    plans[1, :3, 1] = 0.1  # near on the first 3 steps, far afterwards
    plans[1, 3:, 1] = 9.0
    plans[2, :, 1] = 0.2
    plans[3, :, 1] = -0.2  # as near as candidate 2: the lower index wins
    previous = base[0, :3]  # 3 steps of the old plan are left
    assert nearest_plan(plans, previous) == 1  # only the overlap counts
    assert nearest_plan(plans, base[0]) == 2
    assert nearest_plan(plans[[0, 3, 2]], base[0]) == 1


def test_planner_keeps_the_candidate_nearest_the_old_plan_and_falls_back_without_one():
    norm = Normalizer("limits", [0.0] * 4, [1.0] * 4)
    settings = PlanSettings(candidates=8, selection="first", smooth=1, replan_select="nearest")
    planner = Planner(Wiggly(32), norm, settings, seed=3)
    obs, goal = np.array([3.0, 1.0, 0.0, 0.0]), np.array([3.0, 3.0])
    assert planner.plan(obs, goal).chosen == 0  # nothing to be near: `selection` ("first") decides
    planner.reseed(3)
    drawn = planner.sample_plans(obs, goal)  # the candidates the next plan will draw
    previous = drawn[5, :20] + 0.01  # an old plan with 20 steps left that runs beside candidate 5
    for rest, expected in ((previous, 5), (previous[:0], 0)):  # a used-up plan: `selection` again
        planner.reseed(3)
        plan = planner.plan(obs, goal, rest)
        assert plan.chosen == expected
        np.testing.assert_array_equal(plan.states, drawn[expected])
        assert plan.end == int(first_arrival(drawn[expected : expected + 1, :, :2], goal, 0.5)[0])


def test_fixed_noise_repeats_the_episodes_first_noise_until_reseeded():
    norm = Normalizer("limits", [0.0] * 4, [1.0] * 4)
    fixed = Planner(Wiggly(16), norm, candidates=2, selection="first", fixed_noise=True, seed=1)
    fresh = Planner(Wiggly(16), norm, candidates=2, selection="first", seed=1)
    a, b = fixed.noise(2), fixed.noise(2)
    assert torch.equal(a, b) and torch.equal(a, fresh.noise(2))  # the first draw is the generator's own
    assert not torch.equal(fresh.noise(2), a)  # without fixed_noise every plan draws anew
    fixed.reseed(7)
    assert (not torch.equal(fixed.noise(2), a)
            and torch.equal(fixed.noise(2), torch.randn(2, 16, 4, generator=torch.Generator().manual_seed(7))))
    # re-plans from two starts share their noise: the same sideways shifts and jitter
    goal = np.array([3.0, 3.0])
    p = fixed.plan(np.array([3.0, 1.0, 0, 0]), goal).candidates
    q = fixed.plan(np.array([3.2, 1.0, 0, 0]), goal).candidates
    line = lambda x0: np.linspace([x0, 1.0], goal, 16)  # noqa: E731
    np.testing.assert_allclose((p[:, 1:-1, :2] - line(3.0)[1:-1]), (q[:, 1:-1, :2] - line(3.2)[1:-1]), atol=1e-5)


def test_blended_target_weights_recent_plans_by_age_while_they_last():
    from mmftraj.planning.executor import Plan, blended_target

    def plan(value, end):
        states = np.full((10, 4), float(value))
        return Plan(states, end, states[None], 0, 0.0, 1)

    hold = np.array([9.0, 9.0, 0.0, 0.0])
    one = [(0, plan(1, 9))]
    np.testing.assert_array_equal(blended_target(one, 3, 1.0, hold), one[0][1].states[4])  # one plan: its own target
    recent = [(0, plan(4, 9)), (1, plan(2, 9)), (2, plan(1, 9))]  # ages 2, 1, 0: weights 1/4, 1/2, 1
    np.testing.assert_allclose(blended_target(recent, 2, 1.0, hold), (4 / 4 + 2 / 2 + 1) / 1.75)
    recent[0] = (0, plan(4, 2))  # the oldest ended at index 2: at step 2 (index 3) it no longer counts
    np.testing.assert_allclose(blended_target(recent, 2, 1.0, hold), (2 / 2 + 1) / 1.5)
    recent[2] = (2, plan(1, 0))  # the newest used up: it counts as the goal at rest
    np.testing.assert_allclose(blended_target(recent, 2, 1.0, hold), (0.5 * np.full(4, 2.0) + hold) / 1.5)


def test_lookahead_tracks_further_along_the_plan_and_one_is_the_next_state():
    from mmftraj.planning.executor import Plan, blended_target, target_index

    states = np.arange(40, dtype=float).reshape(10, 4)
    recent = [(2, Plan(states, 9, states[None], 0, 0.0, 1))]
    hold = np.zeros(4)
    assert [target_index(k) for k in range(3)] == [1, 2, 3]  # Diffuser's: the next state
    assert [target_index(k, 2.0) for k in range(3)] == [2, 4, 6]
    assert [target_index(k, 1.0, 6) for k in range(3)] == [6, 7, 8]
    np.testing.assert_array_equal(blended_target(recent, 2, 1.0, hold, lookahead=6), states[6])
    np.testing.assert_array_equal(blended_target(recent, 5, 1.0, hold, lookahead=6), states[9])  # the end
    np.testing.assert_array_equal(blended_target(recent, 6, 1.0, hold, lookahead=6), hold)  # past it: the goal


@pytest.mark.parametrize("settings,blend,factor", [({}, 4, 0.85), ({"fixed_noise": True}, 1, 0.6),
                                                  ({"replan_select": "nearest"}, 1, 0.85)])
def test_each_coherence_option_makes_every_step_replanning_smoother(settings, blend, factor):
    """Re-planning at every step from jittery one-step plans jerks the agent around; each option
    must calm it on the same episode (measured ratios over episode seeds 0-2: blend 0.68-0.75,
    fixed noise 0.38-0.50, nearest 0.69-0.72) and still get near the goal."""
    env = make_maze2d("maze2d-umaze-v1")
    norm = Normalizer("limits", [0.0] * 4, [1.0] * 4)

    def episode(settings, blend):
        planner = Planner(Wiggly(64), norm, candidates=8, selection="first", seed=0, **settings)
        return run_episode(env, planner, replan_every=1, seed=0, start=(3.0, 1.0), goal=(3.0, 3.0), keep_plans=0,
                           max_steps=150, blend=blend)

    plain, coherent = episode({}, 1), episode(settings, blend)
    assert roughness(coherent.path) < factor * roughness(plain.path), (roughness(coherent.path), roughness(plain.path))
    assert np.linalg.norm(coherent.path[-1, :2] - [3.0, 3.0]) < 0.5
