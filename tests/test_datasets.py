"""Dataset generation, formats, windows and normalizers."""

import json
import re
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from mmftraj.data import EpisodeStore, Normalizer, WindowDataset, load_episodes
from mmftraj.data.d4rl import load_d4rl, read_d4rl_arrays, save_d4rl
from mmftraj.data.generate import generate, sha256
from mmftraj.errors import UserError

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "motion_table.csv"
KEYS = ["actions", "infos/goal", "infos/qpos", "infos/qvel", "observations", "rewards", "terminals", "timeouts"]


@pytest.fixture(scope="module")
def umaze(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "u.hdf5"
    return generate("maze2d-umaze-v1", samples=20_000, seed=3, out=out, show_progress=False)


def test_generate_format_and_manifest(umaze):
    arrays = read_d4rl_arrays(umaze.path)
    assert sorted(arrays) == KEYS
    assert all(len(v) == 20_000 for v in arrays.values())
    assert arrays["observations"].shape == (20_000, 4) and arrays["observations"].dtype == np.float32
    assert not arrays["terminals"].any()
    # rewards: sparse against the fixed evaluation goal (cell (1, 1)), for the recorded observation
    expect = np.linalg.norm(arrays["observations"][:, :2] - [1.0, 1.0], axis=1) <= 0.5
    np.testing.assert_array_equal(arrays["rewards"], expect.astype(np.float32))
    # timeouts mark exactly the goal changes; states are recorded before each step
    change = np.any(arrays["infos/goal"][1:] != arrays["infos/goal"][:-1], axis=1)
    np.testing.assert_array_equal(arrays["timeouts"][:-1], change)
    np.testing.assert_array_equal(arrays["observations"][:, :2], arrays["infos/qpos"])
    manifest = json.loads(umaze.manifest_path.read_text())
    assert manifest["sha256"] == sha256(umaze.path) and manifest["seed"] == 3
    assert manifest["counts"]["goal_changes"] == int(change.sum()) > 50
    assert [p.name for p in umaze.path.parent.iterdir() if p.name.startswith(".")] == []


def test_observations_follow_env_dynamics(umaze):
    from mmftraj.envs import make_maze2d

    a = read_d4rl_arrays(umaze.path)
    env = make_maze2d("maze2d-umaze-v1")
    for t in (10, 5000, 19_000):
        env.reset(options={"start": a["infos/qpos"][t].astype(float), "qvel": a["infos/qvel"][t].astype(float)})
        obs, *_ = env.step(a["actions"][t])
        np.testing.assert_allclose(obs, a["observations"][t + 1], atol=1e-5)


def test_same_seed_same_bytes(umaze, tmp_path):
    again = generate("maze2d-umaze-v1", samples=20_000, seed=3, out=tmp_path / "u.hdf5", show_progress=False)
    assert again.path.read_bytes() == umaze.path.read_bytes()
    other = generate("maze2d-umaze-v1", samples=20_000, seed=4, out=tmp_path / "v.hdf5", show_progress=False)
    assert other.manifest["sha256"] != umaze.manifest["sha256"]


def test_goal_split_matches_timeouts(umaze):
    by_goal = load_d4rl(umaze.path)
    by_timeouts = load_d4rl(umaze.path, split="timeouts")
    np.testing.assert_array_equal(by_goal.ends, by_timeouts.ends)
    assert by_goal.num_episodes == umaze.manifest["counts"]["episodes"]
    for k in range(by_goal.num_episodes):
        g = by_goal.episode(k)["infos/goal"]
        assert (g == g[0]).all()


def test_hdf5_round_trip(umaze, tmp_path):
    store = load_d4rl(umaze.path)
    save_d4rl(store, tmp_path / "copy.hdf5")
    a, b = read_d4rl_arrays(umaze.path), read_d4rl_arrays(tmp_path / "copy.hdf5")
    assert sorted(a) == sorted(b)
    for k in a:
        assert a[k].dtype == b[k].dtype
        np.testing.assert_array_equal(a[k], b[k])


def test_minari_round_trip(umaze, tmp_path):
    pytest.importorskip("minari")
    from mmftraj.data.minari_io import export_minari

    store = load_d4rl(umaze.path)
    path = export_minari(store, tmp_path / "minari", "mmftraj/maze2d-umaze-v1")
    back = load_episodes(path)
    np.testing.assert_array_equal(back.observations, store.observations)
    np.testing.assert_array_equal(back.actions, store.actions)
    np.testing.assert_array_equal(back.ends, store.ends)
    assert sorted(back.extras) == sorted(store.extras)
    for k, v in store.extras.items():
        np.testing.assert_array_equal(back.extras[k], v)
    with pytest.raises(UserError, match="already exists"):
        export_minari(store, tmp_path / "minari", "mmftraj/maze2d-umaze-v1")


def test_another_mazes_data_is_refused_by_its_positions(umaze, tmp_path):
    """A Minari export carries no env id and no manifest: only its positions say which maze it is."""
    pytest.importorskip("minari")
    from mmftraj.data import maze2d
    from mmftraj.data.minari_io import export_minari
    from mmftraj.run_request import resolve_config

    path = export_minari(load_d4rl(umaze.path), tmp_path / "minari", "mmftraj/u-v0")
    assert load_episodes(path).meta.get("env_id") is None
    _, cfg = resolve_config("maze2d", "medium", overrides=[f"data.path={path}"])
    with pytest.raises(UserError, match=r"inside walls or outside the medium maze .*recorded in another maze"):
        maze2d.load_windows(cfg.data, progress=False)
    _, cfg = resolve_config("maze2d", "umaze", overrides=[f"data.path={path}"])
    assert len(maze2d.load_windows(cfg.data, progress=False)) > 0  # its own maze: every position is free


def test_minari_export_to_a_relative_root_and_a_failed_export_leaves_nothing(umaze, tmp_path, monkeypatch):
    """A relative root used to fail with a traceback and leave an empty dataset blocking the retry."""
    minari = pytest.importorskip("minari")
    from mmftraj.data.minari_io import export_minari

    store = load_d4rl(umaze.path)
    monkeypatch.chdir(tmp_path)

    def broken(*args, **kwargs):
        (tmp_path / "rel" / "mmftraj" / "broken-v0" / "data").mkdir(parents=True)  # as a crash half-way leaves it
        raise RuntimeError("disk full")

    with monkeypatch.context() as m:
        m.setattr(minari, "create_dataset_from_buffers", broken)
        with pytest.raises(UserError, match="Minari could not write .*broken-v0: RuntimeError: disk full"):
            export_minari(store, "rel", "mmftraj/broken-v0")
    assert not (tmp_path / "rel" / "mmftraj" / "broken-v0").exists()
    path = export_minari(store, "rel", "mmftraj/broken-v0")  # the retry works, from a relative root
    assert (path == (tmp_path / "rel" / "mmftraj" / "broken-v0")
            and load_episodes(path).num_episodes == store.num_episodes)


def test_example_table_csv_and_parquet(tmp_path):
    import pandas as pd

    store = load_episodes(EXAMPLE)
    assert store.num_episodes == 3 and store.obs_dim == 2 and store.act_dim == 2
    assert store.lengths.tolist() == [15, 12, 9]  # run_01, walk_01, walk_02
    df = pd.read_csv(EXAMPLE)
    shuffled = df.sample(frac=1.0, random_state=0)
    shuffled.to_parquet(tmp_path / "m.parquet")
    back = load_episodes(tmp_path / "m.parquet")
    np.testing.assert_array_equal(back.observations, store.observations)  # sorted by episode order, time
    np.testing.assert_array_equal(back.observations[15:27],
                                  df[df.episode == "walk_01"][["s_x", "s_y"]].to_numpy(np.float32))


def test_table_errors(tmp_path):
    import pandas as pd

    df = pd.read_csv(EXAMPLE)
    bad = df.copy()
    bad.loc[[3, 7], "s_x"] = np.nan
    bad.loc[9, "a_vy"] = np.inf
    bad.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(UserError, match=r"3 rows with a missing or infinite value \(first at table row 3\)"):
        load_episodes(tmp_path / "bad.csv")
    with pytest.raises(UserError, match=r"missing column 'frame' \(name the columns with data.episode"):
        load_episodes(EXAMPLE, time="frame")
    # A missing episode id or time is reported at its own table row, before any sorting.
    for column in ("episode", "t"):
        holed = df.copy()
        holed.loc[20, column] = None
        holed.to_csv(tmp_path / "holed.csv", index=False)
        with pytest.raises(UserError, match=r"1 row with a missing or infinite value \(first at table row 20\)"):
            load_episodes(tmp_path / "holed.csv")
    df.iloc[:0].to_csv(tmp_path / "header_only.csv", index=False)
    with pytest.raises(UserError, match="a header but no rows"):
        load_episodes(tmp_path / "header_only.csv")
    mixed = df.copy()
    mixed["episode"] = mixed["episode"].map({"walk_01": 7, "walk_02": "walk_02", "run_01": "run_01"})
    mixed.to_csv(tmp_path / "mixed.csv", index=False)  # read back as text; in memory: mixed types
    from mmftraj.data.tables import store_from_frame

    assert store_from_frame(mixed, "mixed").num_episodes == 3


def test_missing_dataset_names_path_and_command(tmp_path):
    path = tmp_path / "maze2d-large-v1.hdf5"
    with pytest.raises(UserError, match=r"maze2d-large-v1.hdf5.*mmftraj data generate maze2d-large-v1"):
        load_episodes(path)


def _write(path, arrays):
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            f.create_dataset(k, data=v)


def _arrays(n=50):
    rng = np.random.default_rng(0)
    return {"observations": rng.normal(size=(n, 4)).astype(np.float32), "actions": rng.normal(size=(n, 2)),
            "rewards": np.zeros(n), "terminals": np.zeros(n, bool), "timeouts": np.zeros(n, bool)}


def test_bad_d4rl_files(tmp_path):
    a = _arrays()
    del a["timeouts"]
    _write(tmp_path / "a.hdf5", a)
    with pytest.raises(UserError, match="missing key 'timeouts'"):
        load_d4rl(tmp_path / "a.hdf5")
    a = _arrays()
    a["rewards"] = np.zeros(49)
    _write(tmp_path / "b.hdf5", a)
    with pytest.raises(UserError, match="'rewards' has 49 rows but 'observations' has 50"):
        load_d4rl(tmp_path / "b.hdf5")
    a = _arrays()
    a["observations"][[1, 2, 30]] = np.nan
    a["actions"][30] = np.inf
    _write(tmp_path / "c.hdf5", a)
    with pytest.raises(UserError, match="3 rows contain NaN or inf"):
        load_d4rl(tmp_path / "c.hdf5")
    (tmp_path / "d.hdf5").write_text("not hdf5")
    with pytest.raises(UserError, match="not a readable HDF5"):
        load_d4rl(tmp_path / "d.hdf5")


def _tagged_store(lengths):
    """Observation column 0 = episode id, column 1 = step within the episode."""
    obs = np.concatenate([np.stack([np.full(n, k), np.arange(n)], 1) for k, n in enumerate(lengths)])
    ends_after = np.zeros(len(obs), bool)
    ends_after[np.cumsum(lengths) - 1] = True
    return EpisodeStore.from_arrays(obs, -obs[:, :1], ends_after)


def test_windows_respect_episode_boundaries():
    store = _tagged_store([5, 12, 3, 8])
    w = WindowDataset(store, horizon=4, normalizer=None)
    assert len(w) == (5 - 3) + (12 - 3) + 0 + (8 - 3)
    batch = w.sample(200, generator=torch.Generator().manual_seed(0))
    assert batch.trajectories.shape == (200, 4, 3) and batch.trajectories.dtype == torch.float32
    obs, act = w.split(batch.trajectories)
    assert (obs[..., 0] == obs[:, :1, 0]).all()  # one episode per window
    assert (torch.diff(obs[..., 1], dim=1) == 1).all()  # consecutive steps
    assert torch.equal(act[..., 0], -obs[..., 0])
    assert torch.equal(batch.start, obs[:, 0]) and torch.equal(batch.goal, obs[:, -1])
    again = w.sample(200, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again.trajectories, batch.trajectories)
    seen = {tuple(x) for x in w.windows(torch.arange(len(w)))[:, 0, :2].tolist()}
    assert seen == {(k, s) for k, n in enumerate([5, 12, 3, 8]) for s in range(n - 3)}
    with pytest.raises(UserError, match="horizon 13"):
        WindowDataset(store, horizon=13)


def test_padded_windows_start_anywhere_and_rest_at_the_episode_end():
    lengths = [5, 12, 3, 8]
    store = _tagged_store(lengths)  # columns: episode id, step (observations), -id (action)
    w = WindowDataset(store, horizon=6, normalizer="limits", pad=True, rest_columns=(2,))
    assert len(w) == sum(lengths)  # every step of every episode starts a window
    x = w.unnormalize(w.windows(torch.arange(len(w))).numpy())
    assert ({tuple(r) for r in x[:, 0, :2].round(6).tolist()}
            == {(k, s) for k, n in enumerate(lengths) for s in range(n)})
    for row in x:
        k, s = int(round(row[0, 0])), int(round(row[0, 1]))
        real = min(6, lengths[k] - s)
        assert np.allclose(row[:, 0], k)  # never crosses into the next episode
        assert np.allclose(row[:real, 1], s + np.arange(real))
        assert np.allclose(row[real:, 1], lengths[k] - 1)  # then waits at the final state...
        assert np.allclose(row[:real, 2], -k) and np.allclose(row[real:, 2], 0.0, atol=1e-6)  # ...at rest
    assert torch.equal(w.window_ends(), torch.minimum(w.window_starts + 6, w.episode_ends))
    short = WindowDataset(store, horizon=6, normalizer=None)  # unpadded: inside episodes only
    assert len(short) == (12 - 5) + (8 - 5)


@pytest.mark.parametrize("kind", ["limits", "gaussian"])
def test_normalizer_inverts_and_serialises(kind):
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(500, 5)) * [1, 10, 0.1, 1, 1]
    x[:, 4] = 7.0  # constant feature
    norm = Normalizer.fit(x, kind)
    z = norm.normalize(x)
    if kind == "limits":
        assert np.allclose(z[:, :4].min(0), -1) and np.allclose(z[:, :4].max(0), 1)
    else:
        assert np.allclose(z[:, :4].mean(0), 0, atol=1e-9) and np.allclose(z[:, :4].std(0), 1)
    assert np.all(z[:, 4] == 0)
    np.testing.assert_allclose(norm.unnormalize(z), x, rtol=1e-12, atol=1e-12)
    restored = Normalizer.from_state_dict(json.loads(json.dumps(norm.state_dict())))
    t = torch.tensor(x, dtype=torch.float32)
    torch.testing.assert_close(restored.unnormalize(restored.normalize(t)), t)
    np.testing.assert_array_equal(restored.normalize(x), z)


def test_window_normalization_round_trip(umaze):
    store = load_d4rl(umaze.path)
    w = WindowDataset(store, horizon=64)
    b = w.sample(8, generator=torch.Generator().manual_seed(1))
    assert b.trajectories.abs().max() <= 1.0 + 1e-6
    raw = w.unnormalize(b.trajectories)
    rows = w.window_starts[b.index][:, None] + torch.arange(64)
    expect = np.concatenate([store.observations, store.actions], 1)[rows.numpy()]
    np.testing.assert_allclose(raw.numpy(), expect, atol=1e-5)
    torch.testing.assert_close(w.normalize_obs(torch.from_numpy(expect[:, 0, :4])), b.start)


def test_cli_generate_and_errors(tmp_path):
    from typer.testing import CliRunner

    from mmftraj.cli import app

    runner = CliRunner()
    out = tmp_path / "cli.hdf5"
    res = runner.invoke(app, ["data", "generate", "maze2d-medium-v1", "--samples", "3000", "--seed", "1",
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert out.is_file() and out.with_suffix(".json").is_file()
    res = runner.invoke(app, ["data", "generate", "maze2d-tiny-v1"])
    assert res.exit_code == 2 and "valid choices" in res.output
    # a user's files are never replaced without --overwrite (issue 20: --out notes.txt ate notes.json)
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "notes.json").write_text("{}")
    res = runner.invoke(app, ["data", "generate", "maze2d-medium-v1", "--samples", "3000",
                              "--out", str(tmp_path / "notes.txt")])
    assert res.exit_code == 2 and "must end in .hdf5" in res.output
    assert (tmp_path / "notes.txt").read_text() == "mine" and (tmp_path / "notes.json").read_text() == "{}"
    before = out.read_bytes()
    res = runner.invoke(app, ["data", "generate", "maze2d-medium-v1", "--samples", "3000", "--seed", "2",
                              "--out", str(out)])
    assert res.exit_code == 2 and "--overwrite" in res.output and out.read_bytes() == before
    res = runner.invoke(app, ["data", "generate", "maze2d-medium-v1", "--samples", "3000", "--seed", "2",
                              "--out", str(out), "--overwrite"])
    assert res.exit_code == 0 and out.read_bytes() != before
    res = runner.invoke(app, ["data", "inspect", str(tmp_path / "nope.hdf5")])
    assert res.exit_code == 2 and "mmftraj data generate" in res.output


@pytest.mark.parametrize("rows,message", [
    ([("a", "0", 1.0), ("a", "x", 2.0), ("a", "2", 3.0)], "time column 't' must be numeric; table row 1 holds 'x'"),
    ([("a", 0, 1.0), ("a", 1, 2.0), ("a", 1, 3.0)], "episode 'a' has the time 1 twice"),
    ([("a", 0, 1.0), ("a", 1, 2.0), ("b", 0, 3.0)], "1 episode of a single row"),
])
def test_table_times_must_be_numeric_and_increasing_and_episodes_longer_than_one_row(tmp_path, rows, message):
    """Each used to pass silently (text times sorted as text; duplicates and 1-row episodes kept)."""
    import pandas as pd

    from mmftraj.data.tables import load_table

    path = tmp_path / "t.csv"
    pd.DataFrame(rows, columns=["episode", "t", "s_x"]).to_csv(path, index=False)
    with pytest.raises(UserError, match=re.escape(message)):
        load_table(path)


def test_a_table_too_large_for_memory_is_refused_before_reading(tmp_path, monkeypatch):
    import mmftraj.data.tables as tables

    path = tmp_path / "big.csv"
    path.write_text("episode,t,s_x\n" + "a,0,1\n" * 100)
    monkeypatch.setattr(tables, "MAX_TABLE_BYTES", 100)
    with pytest.raises(UserError, match="convert it to Parquet"):
        tables.load_table(path)
