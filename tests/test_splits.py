"""Splits: each removes exactly the windows/episodes it should (counted by hand on a small store),
nested low-data subsets, evaluation conditions and shifted envs, and bad input."""

import numpy as np
import pytest

from mmftraj.data.splits import (
    Split,
    apply_split,
    builtin_splits,
    cells_of,
    heldout_store,
    load_split,
    prepare_windows,
    subset_episodes,
    subset_indices,
)
from mmftraj.data.store import EpisodeStore
from mmftraj.data.tables import load_table
from mmftraj.envs import load_layout, make_maze2d
from mmftraj.errors import UserError
from mmftraj.planning.conditions import STANDARD, Condition, ShiftedEnv, split_conditions

H = 3
UMAZE = load_layout("umaze")

def maze_store() -> EpisodeStore:
    """Four U-Maze episodes with positions placed in known cells (cell (i, j) spans
    [i - 0.7, i + 0.3) x [j - 0.7, j + 0.3) in qpos coordinates)."""
    episodes = [
        [(3, 1), (3, 2), (3, 3), (2, 3), (1, 3)],  # 3 windows; starts (3,1) (3,2) (3,3); ends (3,3) (2,3) (1,3)
        [(1, 3), (1, 2.28), (1, 1), (1.25, 1)],  # 2 windows; ends (1,1) (1,1); y = 2.28 is still cell (1, 2)
        [(1, 1), (1, 2)],  # shorter than H: no window
        [(2, 3), (1, 3), (1, 2.32)],  # 1 window; it ends at y = 2.32, which is cell (1, 3), not (1, 2)
    ]
    obs = np.concatenate([np.c_[np.asarray(e, dtype=float), np.zeros((len(e), 2))] for e in episodes])
    ends_after = np.concatenate([np.arange(len(e)) == len(e) - 1 for e in episodes])
    goal = np.concatenate([np.tile(e[-1], (len(e), 1)) for e in episodes])
    return EpisodeStore.from_arrays(obs, np.zeros((len(obs), 2)), ends_after, {"infos/goal": goal})

def test_builtin_splits_load_and_cover_every_kind():
    names = builtin_splits()
    assert {"umaze-goal", "umaze-start", "umaze-dynamics", "umaze-layout"} <= set(names)
    kinds = {load_split(n).kind for n in names}
    assert kinds == {"goal", "start", "dynamics", "layout", "anywhere", "column"}

def test_the_anywhere_split_cycles_goals_over_every_free_cell():
    from mmftraj.envs.layouts import load_layout
    from mmftraj.planning.conditions import split_conditions

    standard, anywhere = split_conditions("umaze-anywhere")
    assert standard.name == "standard" and anywhere.group == "ood" and not load_split("umaze-anywhere").changes_training
    assert set(anywhere.goal_cells) == set(load_layout("umaze").free_cells) and len(anywhere.goal_cells) > 2

def test_cells_of_matches_layout_geometry():
    layout = load_layout("umaze")
    xy = np.random.default_rng(0).uniform(-0.7, 4.3, size=(500, 2))
    expected = np.array([layout.xy_to_cell(p) for p in xy])
    np.testing.assert_array_equal(cells_of(xy), expected)

def test_goal_split_removes_windows_ending_in_held_out_cells():
    store = maze_store()
    full = prepare_windows(store, H, None)
    assert len(full) == 6
    kept = prepare_windows(store, H, None, "umaze-goal", layout=UMAZE)  # holds out (1,1), (1,2)
    assert len(kept) == 4  # episode B loses both windows; D's ends at y = 2.32, cell (1, 3): kept
    ends = store.observations[kept.window_starts.numpy() + H - 1, :2]
    assert [tuple(c) for c in cells_of(ends)] == [(3, 3), (2, 3), (1, 3), (1, 3)]
    assert kept.store.num_episodes == 4  # windows go, episodes stay

def test_goal_split_on_padded_windows_looks_at_the_last_real_step():
    store = maze_store()
    assert len(prepare_windows(store, H, None, pad=True)) == 5 + 4 + 2 + 3  # a window per step
    kept = prepare_windows(store, H, None, "umaze-goal", layout=UMAZE, pad=True)
    # A's five windows end (padded) in (3,3), (2,3), (1,3)x3; B and C end in held-out cells; D's three in (1,3)
    assert len(kept) == 5 + 3
    last = store.observations[kept.window_ends().numpy() - 1, :2]
    assert not {(1, 1), (1, 2)} & {tuple(c) for c in cells_of(last)}

def test_goal_split_for_goals_anywhere_checks_every_possible_goal_step():
    store = maze_store()
    # goal at step 1 or 2 of each window: A's windows see (3,2)/(3,3), (3,3)/(2,3), (2,3)/(1,3): all kept;
    # B's see (1,2)/(1,1) and (1,1)/(1,1): removed; D's sees (1,3)/(1,3) (y = 2.32): kept
    assert len(prepare_windows(store, H, None, "umaze-goal", layout=UMAZE, goal_from=1)) == 4
    # from step 0: the same four (no kept window starts in a held-out cell)
    kept = prepare_windows(store, H, None, "umaze-goal", layout=UMAZE, goal_from=0)
    assert len(kept) == 4
    two = maze_store()
    two.observations[1] = [1.0, 1.0, 0.0, 0.0]  # A's second point moves into held-out cell (1, 1)
    assert len(prepare_windows(two, H, None, "umaze-goal", layout=UMAZE, goal_from=1)) == 3  # A's first window
    assert len(prepare_windows(two, H, None, "umaze-goal", layout=UMAZE, goal_from=0)) == 2  # and its second

def test_start_split_removes_windows_starting_in_held_out_cells():
    store = maze_store()
    kept = prepare_windows(store, H, None, "umaze-start", layout=UMAZE)  # holds out (3,1), (3,2)
    assert len(kept) == 4
    starts = store.observations[kept.window_starts.numpy(), :2]
    assert sorted(tuple(c) for c in cells_of(starts)) == [(1, 2), (1, 3), (2, 3), (3, 3)]

def test_eval_only_splits_keep_every_window():
    store = maze_store()
    for name in ("umaze-dynamics", "umaze-layout"):
        assert len(prepare_windows(store, H, None, name, layout=UMAZE)) == 6

def test_normalizer_is_fitted_on_the_kept_episodes_only():
    from mmftraj.data import Normalizer

    store = maze_store()
    windows = prepare_windows(store, 2, "limits", fraction=0.5, subset_seed=1)
    sub = subset_episodes(store, 0.5, 1)
    assert sub.num_episodes == 2
    expected = Normalizer.fit(np.c_[sub.observations, sub.actions], "limits")
    np.testing.assert_allclose(windows.normalizer.shift, expected.shift)
    np.testing.assert_allclose(windows.normalizer.scale, expected.scale)

def test_column_split_removes_the_held_out_episodes():
    from pathlib import Path

    table = Path(__file__).parents[1] / "examples" / "motion_table.csv"
    store = load_table(table, state=["s_x", "s_y"], action=["a_vx", "a_vy"])
    assert store.num_episodes == 3 and len(store) == 36
    train = apply_split(store, "motion-run")
    assert [m["episode"] for m in train.episode_meta] == ["walk_01", "walk_02"]
    assert len(train) == 21 and list(train.lengths) == [12, 9]
    held = heldout_store(store, "motion-run")
    assert [m["episode"] for m in held.episode_meta] == ["run_01"] and len(held) == 15
    # rows travel with their episode
    k = [m["episode"] for m in store.episode_meta].index("walk_02")
    np.testing.assert_array_equal(train.episode(1)["observations"], store.episode(k)["observations"])

def test_column_split_by_a_per_step_extra_column():
    obs = np.arange(20, dtype=float).reshape(10, 2)
    ends = np.array([0, 0, 1, 0, 1, 0, 0, 0, 0, 1], bool)
    subject = np.array(["a"] * 3 + ["b"] * 2 + ["a"] * 5)
    store = EpisodeStore.from_arrays(obs, np.zeros((10, 1)), ends, {"subject": subject})
    split = Split(name="hold-b", kind="column", column="subject", values=["b"])
    out = apply_split(store, split)
    assert out.num_episodes == 2 and len(out) == 8
    np.testing.assert_array_equal(out.observations[:, 0], obs[[0, 1, 2, 5, 6, 7, 8, 9], 0])

def test_nested_subsets_are_nested_deterministic_and_sized():
    fractions = [0.01, 0.05, 0.1, 0.25, 1.0]
    n = 1234
    subsets = [set(subset_indices(n, f, seed=3)) for f in fractions]
    for small, big in zip(subsets, subsets[1:], strict=False):
        assert small < big
    assert [len(s) for s in subsets] == [13, 62, 124, 309, 1234]
    np.testing.assert_array_equal(subset_indices(n, 0.1, 3), subset_indices(n, 0.1, 3))
    assert set(subset_indices(n, 0.1, 4)) != subsets[2]
    assert len(subset_indices(5, 0.01, 0)) == 1  # never empty

def test_subset_store_keeps_whole_episodes():
    lengths = np.arange(1, 41)
    ends_after = np.zeros(lengths.sum(), bool)
    ends_after[np.cumsum(lengths) - 1] = True
    obs = np.repeat(lengths, lengths)[:, None].astype(float)  # each row holds its episode's length
    store = EpisodeStore.from_arrays(obs, np.zeros((len(obs), 1)), ends_after)
    sub = subset_episodes(store, 0.25, seed=0)
    idx = subset_indices(40, 0.25, 0)
    assert sub.num_episodes == 10
    np.testing.assert_array_equal(sub.lengths, lengths[idx])
    for k in range(sub.num_episodes):
        assert np.all(sub.episode(k)["observations"] == sub.lengths[k])
    assert subset_episodes(store, 1.0, 0) is store

# -- evaluation conditions ------------------------------------------------------------------------
def test_conditions_of_each_maze_split():
    goal = split_conditions("umaze-goal")
    assert [(c.name, c.group) for c in goal] == [("id", "id"), ("ood", "ood")]
    assert set(goal[1].goal_cells) == {(1, 1), (1, 2)}
    assert set(goal[0].goal_cells) == {(1, 3), (2, 3), (3, 1), (3, 2), (3, 3)}
    start = split_conditions("umaze-start")
    assert set(start[1].start_cells) == {(3, 1), (3, 2)} and not start[1].goal_cells
    dyn = split_conditions("umaze-dynamics")
    assert dyn[0] == STANDARD and [c.name for c in dyn[1:]] == ["damping", "gear", "action-noise"]
    assert split_conditions("umaze-layout")[1].env == "maze2d-eval-umaze-v1"
    assert split_conditions(None) == [STANDARD]
    # the nominal condition has one cache key whichever split it comes from
    assert dyn[0].key() == split_conditions("umaze-layout")[0].key() != dyn[1].key()
    with pytest.raises(UserError, match="no rollout evaluation"):
        split_conditions("motion-run")

def test_shifted_env_sets_dynamics_starts_and_noise_per_episode():
    cond = Condition("x", "ood", damping=(6.0,), gear=(50.0, 70.0), start_cells=((3, 1),))
    env = ShiftedEnv(make_maze2d("maze2d-umaze-v1"), cond)
    obs, _ = env.reset(seed=5)
    assert tuple(cells_of(obs[:2])) == (3, 1)
    assert np.all(env.env.model.dof_damping == 6.0)
    gear = env.env.model.actuator_gear[0, 0]
    assert 50 <= gear <= 70 and env.env.model.actuator_gear[1, 0] == gear
    env.reset(seed=5)
    assert env.env.model.actuator_gear[0, 0] == gear  # same seed, same draw
    # nominal condition on the same env object restores d4rl's values
    nominal = ShiftedEnv(env.env, STANDARD)
    nominal.reset(seed=0)
    assert np.all(env.env.model.dof_damping == 1.0) and np.all(env.env.model.actuator_gear[:, 0] == 100.0)

def test_shifted_dynamics_really_change_the_motion():
    def run(cond):
        env = ShiftedEnv(make_maze2d("maze2d-umaze-v1"), cond)
        env.reset(seed=0, options={"start": (3.0, 1.0)})
        for _ in range(20):
            obs, *_ = env.step([0.0, 1.0])
        return obs

    base = run(STANDARD)
    assert run(Condition("d", "ood", damping=(8.0,)))[3] < base[3]  # more damping: slower
    assert run(Condition("g", "ood", gear=(50.0,)))[1] < base[1]  # weaker motor: less travel
    noisy = run(Condition("n", "ood", action_noise=(0.3,)))
    assert not np.allclose(noisy, base) and np.allclose(noisy, run(Condition("n", "ood", action_noise=(0.3,))))

# -- bad input ---------------------------------------------------------------------------------------
def test_unknown_split_name_lists_the_builtins():
    with pytest.raises(UserError, match="unknown split 'umaze-goals'; valid choices: .*umaze-goal"):
        load_split("umaze-goals")
    with pytest.raises(UserError, match="split file not found"):
        load_split("no/such/split.yaml")

@pytest.mark.parametrize("fraction", [0, 0.0, -0.1, 1.5, 2])
def test_fraction_outside_unit_interval(fraction):
    with pytest.raises(UserError, match=r"data fraction must be in \(0, 1\]"):
        prepare_windows(maze_store(), H, None, fraction=fraction)

def test_split_that_leaves_no_training_windows(tmp_path):
    path = tmp_path / "ends.yaml"
    path.write_text("kind: goal\nlayout: umaze\ncells: [[1, 1], [1, 2], [1, 3], [2, 3], [3, 3]]\n")
    with pytest.raises(UserError, match="leaves no training windows"):
        prepare_windows(maze_store(), H, None, str(path), layout=UMAZE)
    every = tmp_path / "every.yaml"
    every.write_text("kind: start\nlayout: umaze\ncells: [[1, 1], [1, 2], [1, 3], [2, 3], [3, 3], [3, 2], [3, 1]]\n")
    with pytest.raises(UserError, match="holds out every free cell"):
        load_split(str(every))
    with pytest.raises(UserError, match="holds out every episode"):
        store = maze_store()
        store.extras["rig"] = np.ones(len(store), dtype=int)
        apply_split(store, Split(name="all", kind="column", column="rig", values=["1"]))
    with pytest.raises(UserError, match="split column 'subject' is not in the dataset; episode columns: infos/goal"):
        apply_split(maze_store(), Split(name="s", kind="column", column="subject", values=["1"]))

def test_bad_split_files(tmp_path):
    cases = {
        "kind: goal\nlayout: umaze\ncells: [[2, 1]]\n": "not a free cell",
        "kind: goal\ncells: [[1, 1]]\n": "needs 'layout'",
        "kind: teleport\n": "is not one of",
        "layout: umaze\n": "missing 'kind'",
        "kind: dynamics\nshifts: [{name: d, damping: [3, 1]}]\n": "lo <= hi",
        "kind: dynamics\nshifts: [{name: g, gear: [0]}]\n": "must be positive",
        "kind: layout\neval_env: maze2d-eval-tiny-v1\n": "unknown eval_env",
        "kind: goal\nlayout: umaze\ncells: [[1, 1]]\nholdout: 3\n": "unknown config key",
    }
    for i, (text, message) in enumerate(cases.items()):
        path = tmp_path / f"s{i}.yaml"
        path.write_text(text)
        with pytest.raises(UserError, match=message):
            load_split(str(path))
    with pytest.raises(UserError, match="defined on layout 'umaze' but the task trains on 'medium'"):
        prepare_windows(maze_store(), H, None, "umaze-goal", layout=load_layout("medium"))
