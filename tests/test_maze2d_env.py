"""The maze2d port against an independent construction of d4rl's model, plus layout handling."""

import gymnasium as gym
import mujoco
import numpy as np
import pytest

import mmftraj.envs  # noqa: F401  (registers the ids)
from mmftraj.envs import load_layout, make_maze2d, parse_layout
from mmftraj.errors import UserError

# d4rl `pointmaze/maze_model.py` maze strings, copied as facts ('\\' separates rows there)
D4RL_MAZES = {
    "umaze": "#####\\#GOO#\\###O#\\#OOO#\\#####",
    "eval-umaze": "#####\\#OOG#\\#O###\\#OOO#\\#####",
    "open": "#######\\#OOOOO#\\#OOGOO#\\#OOOOO#\\#######",
    "medium": "########\\#OO##OO#\\#OO#OOO#\\##OOO###\\#OO#OOO#\\#O#OO#O#\\#OOO#OG#\\########",
    "eval-medium": "########\\#OOOOOG#\\#O#O##O#\\#OOOO#O#\\###OO###\\#OOOOOO#\\#OO##OO#\\########",
    "large": "############\\#OOOO#OOOOO#\\#O##O#O#O#O#\\#OOOOOO#OOO#\\#O####O###O#\\#OO#O#OOOOO#\\"
             "##O#O#O#O###\\#OO#OOO#OGO#\\############",
    "eval-large": "############\\#OO#OOO#OGO#\\##O###O#O#O#\\#OOOO#OOOOO#\\#O##O#OO##O#\\#OOOOOO#OOO#\\"
                  "#O##O#O#O###\\#OOOO#OOOOO#\\############",
}
# (env id, layout, episode steps, ref min, ref max) from d4rl's registrations
REGISTRY = [
    ("maze2d-umaze-v1", "umaze", 300, 23.85, 161.86),
    ("maze2d-medium-v1", "medium", 600, 13.13, 277.39),
    ("maze2d-large-v1", "large", 800, 6.7, 273.99),
    ("maze2d-eval-umaze-v1", "eval-umaze", 300, 36.63, 141.4),
    ("maze2d-eval-medium-v1", "eval-medium", 600, 13.07, 204.93),
    ("maze2d-eval-large-v1", "eval-large", 800, 16.4, 302.22),
    ("maze2d-open-v0", "open", 150, 0.01, 20.66),
]


def d4rl_xml(maze_str: str) -> str:
    """d4rl's point_maze() MJCF written out by hand, including its visual assets."""
    rows = maze_str.split("\\")
    walls = "".join(
        f'<geom conaffinity="1" type="box" name="wall_{w}_{h}" material="wall" pos="{w + 1.0} {h + 1.0} 0" '
        'size="0.5 0.5 0.2"/>'
        for w in range(len(rows)) for h in range(len(rows[0])) if rows[w][h] == "#"
    )
    return f"""<mujoco model="point_maze">
<compiler inertiafromgeom="true" angle="radian" coordinate="local"/>
<option timestep="0.01" gravity="0 0 0" iterations="20" integrator="Euler"/>
<default><joint damping="1" limited="false"/>
<geom friction=".5 .1 .1" density="1000" margin="0.002" condim="1" contype="2" conaffinity="1"/></default>
<asset>
<texture type="2d" name="groundplane" builtin="checker" rgb1="0.2 0.3 0.4" rgb2="0.1 0.2 0.3" width="100" height="100"/>
<texture name="skybox" type="skybox" builtin="gradient" rgb1=".4 .6 .8" rgb2="0 0 0" width="800" height="800"
 mark="random" markrgb="1 1 1"/>
<material name="groundplane" texture="groundplane" texrepeat="20 20"/>
<material name="wall" rgba=".7 .5 .3 1"/><material name="target" rgba=".6 .3 .3 1"/>
</asset>
<visual><headlight ambient=".4 .4 .4" diffuse=".8 .8 .8" specular="0.1 0.1 0.1"/>
<map znear=".01"/><quality shadowsize="2048"/></visual>
<worldbody>
<geom name="ground" size="40 40 0.25" pos="0 0 -0.1" type="plane" contype="1" conaffinity="0" material="groundplane"/>
<body name="particle" pos="1.2 1.2 0">
<geom name="particle_geom" type="sphere" size="0.1" rgba="0.0 0.0 1.0 0.0" contype="1"/>
<site name="particle_site" pos="0.0 0.0 0" size="0.2" rgba="0.3 0.6 0.3 1"/>
<joint name="ball_x" type="slide" pos="0 0 0" axis="1 0 0"/>
<joint name="ball_y" type="slide" pos="0 0 0" axis="0 1 0"/>
</body>
<site name="target_site" pos="0.0 0.0 0" size="0.2" material="target"/>
{walls}
</worldbody>
<actuator>
<motor joint="ball_x" ctrlrange="-1.0 1.0" ctrllimited="true" gear="100"/>
<motor joint="ball_y" ctrlrange="-1.0 1.0" ctrllimited="true" gear="100"/>
</actuator></mujoco>"""


def reference_rollout(maze_str, qpos, qvel, actions):
    """d4rl MazeEnv.step semantics: clip action; clip qvel + set_state (forward); one mj_step."""
    m = mujoco.MjModel.from_xml_string(d4rl_xml(maze_str))
    d = mujoco.MjData(m)
    d.qpos[:], d.qvel[:] = qpos, qvel
    mujoco.mj_forward(m, d)
    out = []
    for a in actions:
        a = np.clip(a, -1.0, 1.0)
        qv = np.clip(d.qvel, -5.0, 5.0)
        d.qpos[:], d.qvel[:] = d.qpos.copy(), qv
        mujoco.mj_forward(m, d)
        d.ctrl[:] = a
        mujoco.mj_step(m, d)
        out.append(np.concatenate([d.qpos, d.qvel]))
    return np.array(out)


@pytest.mark.parametrize("env_id,layout,steps,lo,hi", REGISTRY)
def test_matches_independent_d4rl_model(env_id, layout, steps, lo, hi):
    env = gym.make(f"mmftraj/{env_id}")
    assert env.spec.max_episode_steps == steps
    obs0, _ = env.reset(seed=3)
    rng = np.random.default_rng(7)
    # long action sequences, strong enough to hit walls and the velocity clip, with sticky segments
    actions = np.repeat(rng.normal(0, 1.5, size=(steps // 10, 2)), 10, axis=0)
    ref = reference_rollout(D4RL_MAZES[layout], obs0[:2], obs0[2:], actions)
    goal = np.argwhere(np.array([list(r) for r in D4RL_MAZES[layout].split("\\")]) == "G")[0].astype(float)
    ours, rewards = [], []
    for t, a in enumerate(actions):
        obs, r, term, trunc, _ = env.step(a)
        ours.append(obs)
        rewards.append(r)
        assert not term and trunc == (t == steps - 1)
    np.testing.assert_array_equal(np.array(ours), ref)
    ref_rewards = (np.linalg.norm(ref[:, :2] - goal, axis=1) <= 0.5).astype(float)
    np.testing.assert_array_equal(rewards, ref_rewards)
    ret = float(np.sum(rewards))
    assert env.unwrapped.get_normalized_score(ret) == pytest.approx(100 * (ret - lo) / (hi - lo))
    assert np.abs(ref[:, 2:]).max() > 1.0  # the sequence really moved the particle


def test_walls_block_with_minus_02_shift():
    env = make_maze2d("maze2d-umaze-v1")
    # cell (3, 1) is free; cell (3, 0) is a wall whose square ends at y = -0.2 + 0.5 = 0.3 in qpos
    env.reset(seed=0, options={"start": (3.0, 1.0)})
    for _ in range(300):
        obs, *_ = env.step([0.0, -1.0])
    assert obs[1] == pytest.approx(0.3 + 0.1, abs=0.03)  # sphere radius 0.1 against the wall face


def test_reset_distribution_and_options():
    env = make_maze2d("maze2d-medium-v1")
    cells = set()
    for seed in range(300):
        obs, info = env.reset(seed=seed)
        cell = tuple(np.round(obs[:2]).astype(int))
        assert np.all(np.abs(obs[:2] - cell) <= 0.1) and not env.layout.walls[cell]
        cells.add(cell)
        np.testing.assert_array_equal(info["goal"], [6.0, 6.0])
    assert cells == set(env.layout.free_cells)
    obs, info = env.reset(seed=1, options={"start": (1.0, 1.0), "goal": (5.0, 4.0)})
    np.testing.assert_array_equal(obs, [1.0, 1.0, 0.0, 0.0])
    np.testing.assert_array_equal(env.goal, [5.0, 4.0])
    a, _ = env.reset(seed=5)
    b, _ = env.reset(seed=5)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("goal,word", [((0.0, 0.0), "wall"), ((1.0, 3.0), "wall"), ((20.0, 1.0), "outside")])
def test_goal_in_wall_or_outside_is_refused(goal, word):
    env = make_maze2d("maze2d-medium-v1")
    with pytest.raises(UserError, match=word):
        env.reset(options={"goal": goal})


def test_builtin_layouts_match_d4rl_strings():
    for name, s in D4RL_MAZES.items():
        assert load_layout(name).text() == s.replace("\\", "\n") + "\n"


@pytest.mark.parametrize("text,where", [
    ("#####\n#OXO#\n#####\n", "line 2, column 3"),
    ("#####\n#OO#\n#####\n", "line 2, column 5"),
    ("###\n###\n", "no free cell"),
    ("#####\n#GOG#\n#####\n", "line 2, column 4"),
])
def test_bad_layouts_name_line_and_column(text, where):
    with pytest.raises(UserError, match=where):
        parse_layout(text, name="my.txt")


def test_user_layout_file(tmp_path):
    path = tmp_path / "corridor.txt"
    path.write_text("######\n#OOOG#\n######\n")
    env = make_maze2d("maze2d-umaze-v1", layout=str(path))
    obs, _ = env.reset(seed=0)
    assert env.goal.tolist() == [1.0, 4.0] and env.layout.is_free(obs[:2])
    with pytest.raises(UserError, match="reference"):
        env.get_normalized_score(10.0)
    with pytest.raises(UserError, match="not found"):
        load_layout(tmp_path / "missing.txt")


def test_geometry_helpers():
    lay = load_layout("umaze")
    assert lay.xy_to_cell((1.0, 1.0)) == (1, 1)
    assert lay.xy_to_cell((1.29, 0.31)) == (1, 1)  # square is [i-0.7, i+0.3]
    assert not lay.is_free((1.0, 0.25)) and lay.is_free((1.0, 0.35))
    assert lay.cell_to_xy((3, 2)).tolist() == [3.0, 2.0]
    pts = np.random.default_rng(0).uniform(-1.5, 5.5, size=(500, 2))  # inside, in walls, outside the maze
    assert lay.free_share(pts) == pytest.approx(np.mean([lay.is_free(p) for p in pts]))
    assert 0 < lay.free_share(pts) < 1 and lay.free_share(np.zeros((0, 2))) == 1.0


def test_render_writes_png(tmp_path):
    from mmftraj.envs import plot_maze

    lay = load_layout("large")
    line = np.array([[1.0, 1.0], [1.0, 4.0], [3.0, 4.0]])
    plot_maze(lay, lines=[line], labels=["plan"], start=line[0], goal=(7.0, 9.0), path=tmp_path / "m.png")
    assert (tmp_path / "m.png").read_bytes()[:4] == b"\x89PNG"
