"""The report: aggregation checked against independent computations, stability counts, the grid's
shape, a tiny grid of real maze2d runs end to end, resuming an interrupted grid, and bad input."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from rich.console import Console

from mmftraj.errors import UserError
from mmftraj.experiments.report import (
    TrainKey,
    build_grid,
    load_report_config,
    paired_differences,
    print_summary,
    report_markdown,
    run_report,
    summarize,
)
from mmftraj.experiments.stability import run_stability


# -- aggregation ----------------------------------------------------------------------------------
def per_run_table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for split, cond, group in (("s1", "id", "id"), ("s1", "ood", "ood")):
        for variant, shift in (("mmf", 5.0), ("fm", 0.0), ("meanflow", -2.0)):
            for seed in range(4):
                rows.append(dict(split=split, condition=cond, group=group, fraction=1.0, variant=variant, seed=seed,
                                 score=float(50 + shift + 3 * seed + rng.normal()), success_rate=0.5, spikes=seed % 2,
                                 diverged=False))
    return pd.DataFrame(rows)


def test_summary_is_mean_and_standard_error_over_seeds():
    df = per_run_table()
    s = summarize(df)
    assert len(s) == 6 and set(s.columns) >= {"split", "condition", "variant", "n", "score_mean", "score_se"}
    row = s[(s.condition == "ood") & (s.variant == "fm")].iloc[0]
    x = df[(df.condition == "ood") & (df.variant == "fm")].score.to_numpy()
    assert row.n == 4 and row.spikes == 2
    assert row.score_mean == pytest.approx(np.mean(x))
    assert row.score_se == pytest.approx(np.std(x, ddof=1) / 2)


def test_paired_differences_match_scipy_t_interval():
    stats = pytest.importorskip("scipy.stats")
    df = per_run_table()
    p = paired_differences(df, "mmf", 0.95)
    assert set(p.comparison) == {"mmf - fm", "mmf - meanflow"} and len(p) == 4
    row = p[(p.condition == "id") & (p.comparison == "mmf - meanflow")].iloc[0]
    a = df[(df.condition == "id") & (df.variant == "mmf")].sort_values("seed").score.to_numpy()
    b = df[(df.condition == "id") & (df.variant == "meanflow")].sort_values("seed").score.to_numpy()
    low, high = stats.t.interval(0.95, 3, loc=np.mean(a - b), scale=stats.sem(a - b))
    assert row.n == 4 and row.diff_mean == pytest.approx(np.mean(a - b))
    assert (row.ci_low, row.ci_high) == (pytest.approx(low, rel=1e-5), pytest.approx(high, rel=1e-5))
    # pairing matters: seeds move all variants together, so the paired interval is narrow
    assert row.verdict == "mmf better" and high - low < 4


def test_paired_differences_pair_on_seed_not_on_row_order():
    df = per_run_table()
    shuffled = df.sample(frac=1.0, random_state=3)
    order = ["condition", "comparison"]
    pd.testing.assert_frame_equal(  # `test` numbers the family's tests in the order rows come
        paired_differences(df).drop(columns="test").sort_values(order).reset_index(drop=True),
        paired_differences(shuffled).drop(columns="test").sort_values(order).reset_index(drop=True))


def test_the_paired_table_gives_holm_adjusted_verdicts_with_the_raw_interval_and_p_beside_them():
    """One table is one family: `mmf - mmf-full` has an interval below 0 and p = 0.029 on its own,
    but Holm over the table's 3 tests makes it 0.057, not separable. A split that only re-scores the
    same runs under the same condition (s2) repeats those tests without enlarging the family."""
    diffs = {"fm": [10.0, 10.1, 9.9], "meanflow": [1.0, 1.6, 0.4], "mmf-full": [-1.0, -1.3, -0.7]}
    rows = []
    for split in ("s1", "s2"):
        for seed in range(3):
            for variant, d in [("mmf", [0.0] * 3), *diffs.items()]:
                rows.append(dict(split=split, condition="standard", group="id", fraction=1.0, variant=variant,
                                 seed=seed, score=100.0 + seed - d[seed], success_rate=1.0, spikes=0, diverged=False,
                                 final_mse=0.01, tangent="model", run=f"report/{variant}-s{seed}"))
    per_run = pd.DataFrame(rows)
    paired = paired_differences(per_run, "mmf", 0.95)
    row = {(r.split, r.comparison): r for r in paired.itertuples()}
    t = 1.0 / (0.3 / np.sqrt(3))  # mmf - mmf-full: mean -1, s.d. 0.3 over 3 seeds; df 2: p = 1 - t / sqrt(2 + t^2)
    p = 1 - t / np.sqrt(2 + t * t)
    for split in ("s1", "s2"):
        full = row[split, "mmf - mmf-full"]
        assert full.ci_high < 0 and full.p == pytest.approx(p, rel=1e-9)  # the raw interval excludes 0 ...
        assert full.p_holm == pytest.approx(2 * p, rel=1e-9) and full.verdict == "not separable"  # ... Holm does not
        assert (row[split, "mmf - fm"].verdict == "mmf better"
                and row[split, "mmf - meanflow"].verdict == "not separable")
    assert paired["test"].nunique() == 3
    cfg = load_report_config("standard")
    md = report_markdown("ood", cfg, per_run, summarize(per_run), paired, {}, {})
    assert ("| s1 | standard | 1.0 | mmf - mmf-full | 3 | -1.0 ± 0.2 | [-1.7, -0.3] | 0.029 | 0.057 "
            "| not separable |") in md
    assert "| s2 | standard | 1.0 | mmf - fm | 3 | 10.0 ± 0.1 | [9.8, 10.2] | < 0.001 | < 0.001 | mmf better |" in md
    assert "Verdicts: not separable: 4, mmf better: 2. This table is one family of\n3 distinct tests" in md
    assert "(2 of the 3 tests\nhave p < 0.05 before adjustment)" in md
    console = Console(record=True, width=200)
    print_summary("ood", summarize(per_run), paired, console)  # the terminal says what report.md says
    lines = {line.split("│")[4].strip(): line for line in console.export_text().splitlines() if line.count("│") > 8
             and line.split("│")[1].strip() == "s1"}
    assert "[-1.7, -0.3]" in lines["mmf-full"] and lines["mmf-full"].split("│")[8].strip() == "not separable"
    assert lines["fm"].split("│")[8].strip() == "mmf better" and lines["mmf"].split("│")[8].strip() == ""


def test_stability_counts_spikes_and_divergence(tmp_path):
    mse = [1.0, 0.9, 0.8, 0.8, 0.7, 3.0, 0.6, 0.6, 0.5, 0.5, 2.0, 0.4]  # spikes at 3.0 (med 0.8) and 2.0 (0.6)
    path = tmp_path / "metrics.csv"
    pd.DataFrame({"step": np.arange(1, 13) * 10, "loss": 1.0, "mse": mse, "grad_norm": 1.0}).to_csv(path, index=False)
    assert run_stability(path, 3.0) == {"spikes": 2, "diverged": False, "final_mse": 0.4}
    assert run_stability(path, 5.0)["spikes"] == 0
    pd.DataFrame({"step": [1, 2, 3], "loss": [1.0, float("nan"), 1.0],
                  "mse": [1.0, 1.0, 1.0]}).to_csv(path, index=False)
    assert run_stability(path)["diverged"] is True
    pd.DataFrame({"step": [1, 2, 3, 4], "loss": 1.0, "mse": [1.0, 0.2, 0.3, 0.9]}).to_csv(path, index=False)
    assert run_stability(path)["diverged"] is True  # final 0.9 > 3 x min 0.2


# -- the grid ---------------------------------------------------------------------------------------
def test_ood_grid_shares_full_data_runs_between_eval_only_splits():
    cfg = load_report_config("standard")
    grid = build_grid("ood", cfg)
    keys = {item.key for item in grid}
    assert len(grid) == 5 * 5 * 3  # splits x variants x seeds
    assert len(keys) == 3 * 5 * 3  # goal-, start- and full-data runs
    assert {k.split for k in keys} == {"umaze-goal", "umaze-start", None}
    assert list(dict.fromkeys(k.split for k in (i.key for i in grid)))[0] is None  # full-data runs first
    low = {item.key for item in build_grid("lowdata", cfg)}
    assert len(low) == 6 * 5 * 3 and len(keys & low) == 5 * 3  # fractions x variants x seeds; 100% = full data
    assert TrainKey("mmf", 1, None, 0.05).run_name == "mmf-all-f0.05-s1"
    assert TrainKey("mmf", 1, None, 0.05).overrides(7) == ["data.fraction=0.05", "data.subset_seed=7"]
    assert TrainKey("fm", 0).overrides(7) == []
    # no subset seed: each training seed draws its own subset (the interval includes which data was seen)
    assert TrainKey("mmf", 2, None, 0.05).overrides(None) == ["data.fraction=0.05", "data.subset_seed=2"]
    assert load_report_config().lowdata.subset_seed is None


def test_report_config_bad_input(tmp_path):
    with pytest.raises(UserError, match="unknown report preset 'fast'"):
        load_report_config("fast")
    with pytest.raises(UserError, match="at least 2 distinct seeds"):
        load_report_config("standard", overrides=["seeds=[0]"])
    with pytest.raises(UserError, match="unknown objective variant 'ddpm'"):
        load_report_config("standard", overrides=["variants=[mmf, ddpm]"])
    with pytest.raises(UserError, match=r"data fraction must be in \(0, 1\], got 1.5"):
        build_grid("lowdata", load_report_config("standard", overrides=["lowdata.fractions=[0.5, 1.5]"]))
    with pytest.raises(UserError, match="unknown split 'umaze-goals'"):
        build_grid("ood", load_report_config("standard", overrides=["ood.splits=[umaze-goals]"]))
    with pytest.raises(UserError, match="unknown report 'iid'"):
        build_grid("iid", load_report_config("standard"))
    with pytest.raises(UserError, match="task 'toy2d' has no report evaluation; tasks with one: maze2d"):
        run_report("lowdata", load_report_config("standard", task="toy2d"), tmp_path / "runs", progress=False)
    assert not (tmp_path / "runs").exists()  # refused before training anything


# -- real runs ----------------------------------------------------------------------------------------
TINY = ["train.threads=1", "data.horizon=32", "model.patch=8", "model.width=32", "model.depth=1", "model.heads=2",
        "train.steps=24", "train.batch_size=16", "train.log_every=4", "train.ckpt_every=12", "train.warmup_steps=4",
        "objective.lambda_warmup=12", "eval.train_episodes=0", "eval.candidates=2", "eval.fm_steps=2",
        "eval.latency_repeats=1"]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from mmftraj.data.generate import generate

    path = tmp_path_factory.mktemp("data") / "umaze-tiny.hdf5"
    generate("maze2d-umaze-v1", samples=12000, seed=0, out=path, show_progress=False)
    return path


def tiny_config(data: Path, **extra):
    overrides = [f"data.path={data}", *TINY]
    base = dict(name="tiny", overrides=overrides, variants=["fm", "mmf"], seeds=[0, 1], episodes=2)
    return load_report_config(overrides=[f"{k}={json.dumps(v)}" for k, v in {**base, **extra}.items()])


def test_tiny_ood_grid_of_real_runs_then_resume(tiny_data, tmp_path):
    cfg = tiny_config(tiny_data, ood={"splits": ["umaze-goal", "umaze-dynamics", "umaze-layout"]})
    paths = run_report("ood", cfg, tmp_path / "runs", tmp_path / "out", progress=False, confirmed=True)
    for name in ("report.md", "report.csv", "per_run.csv", "paired.csv", "ood.png", "losses.png"):
        assert paths[name].is_file() and paths[name].stat().st_size > 0
    per_run = pd.read_csv(paths["per_run.csv"])
    # goal: id + ood; dynamics: standard + 3 shifts; layout: standard + ood → 8 rows per variant and seed
    assert len(per_run) == 8 * 2 * 2
    assert per_run.groupby(["split", "variant"]).seed.nunique().eq(2).all()
    assert set(per_run[per_run.split == "umaze-layout"].env) == {"maze2d-umaze-v1", "maze2d-eval-umaze-v1"}
    summary = pd.read_csv(paths["report.csv"])
    assert len(summary) == 8 * 2 and summary["n"].eq(2).all()
    paired = pd.read_csv(paths["paired.csv"])
    assert len(paired) == 8 and set(paired.comparison) == {"mmf - fm"}
    runs = tmp_path / "runs" / "maze2d" / "tiny"
    assert sorted(p.name for p in runs.iterdir() if p.is_dir()) == [
        "fm-all-f1-s0", "fm-all-f1-s1", "fm-umaze-goal-f1-s0", "fm-umaze-goal-f1-s1",
        "mmf-all-f1-s0", "mmf-all-f1-s1", "mmf-umaze-goal-f1-s0", "mmf-umaze-goal-f1-s1"]
    # the goal-split runs trained on fewer windows than the full-data runs
    windows = {p.name: json.loads((p / "results.json").read_text())["windows"] for p in runs.iterdir() if p.is_dir()}
    assert windows["mmf-umaze-goal-f1-s0"] < windows["mmf-all-f1-s0"]

    # interrupt one run: drop its final checkpoint, results and cached scores; keep step 12
    victim = runs / "mmf-umaze-goal-f1-s1"
    before = json.loads((victim / "results.json").read_text())
    import shutil

    shutil.rmtree(victim / "checkpoints" / "step_00000024")
    shutil.rmtree(victim / "report-eval")
    (victim / "results.json").unlink()
    others = {p: p.stat().st_mtime_ns for d in runs.iterdir() if d.is_dir() and d != victim
              for p in [d / "results.json", *(d / "report-eval").iterdir(), *(d / "checkpoints").rglob("*")]}
    per_run_before = per_run
    run_report("ood", cfg, tmp_path / "runs", tmp_path / "out", progress=False, confirmed=True)
    assert all(p.stat().st_mtime_ns == t for p, t in others.items())  # finished runs untouched
    after = json.loads((victim / "results.json").read_text())
    assert after["steps"] == 24 and after["final_loss"] == pytest.approx(before["final_loss"], rel=1e-6)
    metrics = pd.read_csv(victim / "metrics.csv")
    assert list(metrics.step) == list(range(4, 25, 4))  # resumed from step 12, no duplicated rows
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "out" / "per_run.csv").drop(columns="train_time_s"),
                                  per_run_before.drop(columns="train_time_s"))


def test_tiny_lowdata_grid_and_changed_config(tiny_data, tmp_path):
    cfg = tiny_config(tiny_data, lowdata={"fractions": [0.25, 1.0], "subset_seed": 0})
    paths = run_report("lowdata", cfg, tmp_path / "runs", tmp_path / "out", progress=False, confirmed=True)
    per_run = pd.read_csv(paths["per_run.csv"])
    assert len(per_run) == 2 * 2 * 2 and set(per_run.fraction) == {0.25, 1.0}
    assert paths["lowdata.png"].is_file()
    runs = tmp_path / "runs" / "maze2d" / "tiny"
    w = {f: json.loads((runs / f"mmf-all-f{f}-s0" / "results.json").read_text())["windows"] for f in ("0.25", "1")}
    assert 0 < w["0.25"] < w["1"]
    # other evaluation settings: the same runs are re-scored, not retrained
    rescored = tiny_config(tiny_data, lowdata={"fractions": [0.25, 1.0], "subset_seed": 0})
    rescored.overrides.append("eval.candidates=3")
    trained = {p: p.stat().st_mtime_ns for p in runs.rglob("results.json")}
    run_report("lowdata", rescored, tmp_path / "runs", tmp_path / "out2", progress=False, confirmed=True)
    assert {p: p.stat().st_mtime_ns for p in runs.rglob("results.json")} == trained
    assert len(list((runs / "mmf-all-f1-s0" / "report-eval").iterdir())) == 2
    # other training settings under the same report name: refused
    changed = tiny_config(tiny_data, lowdata={"fractions": [0.25, 1.0], "subset_seed": 0})
    changed.overrides.append("model.width=16")
    with pytest.raises(UserError, match="was trained with a different config"):
        run_report("lowdata", changed, tmp_path / "runs", tmp_path / "out", progress=False, confirmed=True)


# -- the command line ------------------------------------------------------------------------------------
def cli(*args):
    """`mmftraj report ...` in process (the user_errors contract is the same as in a subprocess)."""
    from typer.testing import CliRunner

    from mmftraj.cli import app

    result = CliRunner().invoke(app, ["report", *args])
    return result.exit_code, result.stderr


@pytest.mark.parametrize("args,expected", [
    (["iid"], "unknown report 'iid'; valid choices: findings, lowdata, ood"),
    (["ood", "--check"], "--check is for `report findings`"),
    (["ood", "--preset", "fast"], "unknown report preset 'fast'"),
    (["ood", "--preset", "standard", "--set", "ood.splits=[umaze-goals]"], "unknown split 'umaze-goals'"),
    (["lowdata", "--preset", "standard", "--set", "lowdata.fractions=[0.1,1.5]"], r"data fraction must be in (0, 1]"),
    (["lowdata", "--preset", "standard", "--set", "lowdata.fractions=[0]"], r"data fraction must be in (0, 1]"),
    (["ood", "--config", "missing.yaml"], "config file not found"),
])
def test_cli_bad_input_is_one_line_exit_2(args, expected, tmp_path):
    code, stderr = cli(*args, "--runs-dir", str(tmp_path))
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and expected in lines[0], stderr


def test_cli_split_leaving_no_training_data(tiny_data, tmp_path):
    from mmftraj.data import load_episodes
    from mmftraj.data.splits import cells_of, prepare_windows

    # hold out every cell in which some 160-step window of this dataset ends (not every free cell;
    # unpadded windows, so long episodes only)
    windows = prepare_windows(load_episodes(tiny_data), 160, None)
    ends = cells_of(windows.store.observations[windows.window_starts.numpy() + 159, :2])
    cells = sorted({tuple(map(int, c)) for c in ends})
    assert 0 < len(cells) < 7
    split = tmp_path / "ends.yaml"
    split.write_text(yaml.safe_dump({"kind": "goal", "layout": "umaze", "cells": [list(c) for c in cells]}))
    cfg = tmp_path / "report.yaml"
    cfg.write_text(yaml.safe_dump({"name": "empty", "variants": ["mmf"], "seeds": [0, 1],
                                   "ood": {"splits": [str(split)]},
                                   "overrides": [f"data.path={tiny_data}", *TINY, "data.horizon=160", "model.patch=16",
                                                 "data.pad=false"]}))
    code, stderr = cli("ood", "--config", str(cfg), "--runs-dir", str(tmp_path / "runs"))
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "leaves no training windows" in lines[0], stderr


def test_a_stored_grid_accumulates_in_shards_and_rebuilds_without_runs(tiny_data, tmp_path):
    """Two shards each train half the runs and store one JSON per run; the report is then rebuilt
    from the store alone (run folders deleted), and fm is scored at each of fm_steps."""
    store = tmp_path / "store"
    cfg = tiny_config(tiny_data, lowdata={"fractions": [1.0], "subset_seed": 0}, store=str(store),
                      fm_steps=[1, 2], variants=["fm", "mmf", "meanflow-tmodel"])
    first = run_report("lowdata", cfg, tmp_path / "runs", tmp_path / "out", progress=False, confirmed=True,
                       shard=(0, 2))
    half = sorted(p.stem for p in store.iterdir())
    assert len(half) == 3 and first  # runs 0, 2, 4 of 6
    assert "Incomplete" in first["report.md"].read_text()
    run_report("lowdata", cfg, tmp_path / "runs", tmp_path / "out", progress=False, confirmed=True, shard=(1, 2))
    assert len(list(store.iterdir())) == 6
    record = json.loads((store / "meanflow-tmodel-all-f1-s0.json").read_text())
    assert record["tangent"] == "model" and record["variant"] == "meanflow-tmodel" and record["curve"]["step"]
    shutil.rmtree(tmp_path / "runs")
    paths = run_report("lowdata", cfg, tmp_path / "runs", tmp_path / "out2", progress=False, train=False)
    assert not (tmp_path / "runs").exists()  # nothing trained
    per_run = pd.read_csv(paths["per_run.csv"])
    assert sorted(per_run.variant.unique()) == ["fm@1", "fm@2", "meanflow-tmodel", "mmf"]
    assert set(per_run[per_run.variant == "fm@2"].evaluations) == {2}
    assert set(per_run[per_run.variant == "meanflow-tmodel"].tangent) == {"model"}
    assert "Incomplete" not in paths["report.md"].read_text()
    elsewhere = tiny_config(tiny_data, lowdata={"fractions": [1.0], "subset_seed": 0}, store=str(store),
                            fm_steps=[1, 2], variants=["fm", "mmf", "meanflow-tmodel"])
    elsewhere.overrides += ["train.threads=2", "train.log_every=3", "train.device=cpu"]  # another machine's settings
    again = run_report("lowdata", elsewhere, tmp_path / "runs", tmp_path / "out4", progress=False, train=False)
    assert "Incomplete" not in again["report.md"].read_text()  # stored results count whichever machine made them
    (store / "mmf-all-f1-s1.json").unlink()
    partial = run_report("lowdata", cfg, tmp_path / "runs", tmp_path / "out3", progress=False, train=False)
    assert "mmf-all-f1-s1" in partial["report.md"].read_text() and not (tmp_path / "runs").exists()
    changed = tiny_config(tiny_data, lowdata={"fractions": [1.0], "subset_seed": 0}, store=str(store),
                          fm_steps=[1, 2], variants=["fm", "mmf", "meanflow-tmodel"])
    changed.overrides.append("model.width=16")
    with pytest.raises(UserError, match="trained with a different config"):
        run_report("lowdata", changed, tmp_path / "runs", tmp_path / "out", progress=False, train=False)


def test_an_eval_field_added_later_keeps_stored_scores_valid_at_its_neutral_value():
    """Scores stored before `eval.goals` existed were taken with the layout's goal: at that value
    the field stays out of a score's id (the committed grid stays valid); at another it re-scores."""
    import copy
    import hashlib

    from mmftraj.config import to_dict
    from mmftraj.experiments.report import EVAL_FIELDS_ADDED, TrainKey, eval_id, resolved_task_config
    from mmftraj.planning.conditions import STANDARD

    cfg = load_report_config("standard")
    _, task_cfg = resolved_task_config(cfg, TrainKey("mmf", 0))
    before = {k: v for k, v in to_dict(task_cfg)["eval"].items() if k not in EVAL_FIELDS_ADDED}  # as stored then
    old = hashlib.sha1(json.dumps(before, sort_keys=True).encode()).hexdigest()[:8]
    assert eval_id(cfg, task_cfg, STANDARD, None).split("-")[1] == old
    random_goals = copy.deepcopy(task_cfg)
    random_goals.eval.goals = "random"
    assert eval_id(cfg, random_goals, STANDARD, None) != eval_id(cfg, task_cfg, STANDARD, None)


REPO = Path(__file__).resolve().parents[1]
STANDARD = REPO / "benchmarks" / "records" / "reports" / "standard"


@pytest.mark.parametrize("kind", ["ood", "lowdata"])
def test_the_committed_standard_records_rebuild_the_committed_report(kind, tmp_path):
    """train.compile_cpu and train.signal_grace_s, added after the grid was stored, changed every
    record's training hash: `--no-train` refused the whole committed grid as trained differently."""
    cfg = load_report_config("standard", overrides=[f"store={STANDARD / 'results'}"])
    paths = run_report(kind, cfg, tmp_path / "runs", tmp_path / "out", progress=False, train=False)
    assert not (tmp_path / "runs").exists()
    for name in ("report.csv", "per_run.csv"):
        assert paths[name].read_text() == (STANDARD / kind / name).read_text()


def test_the_standard_report_finds_the_committed_results_from_any_folder(tmp_path, monkeypatch):
    """Run elsewhere, `report ood --preset standard` found none of benchmarks/'s records and set out
    to train 45 runs; now it reads them from the repository this package runs from."""
    monkeypatch.chdir(tmp_path)
    for extra in (["--no-train"], ["--runs-dir", str(tmp_path / "runs")]):
        code, stderr = cli("ood", "--preset", "standard", "--out", str(tmp_path / "out"), *extra)
        assert code == 0, stderr
        assert (tmp_path / "out" / "report.csv").read_text() == (STANDARD / "ood" / "report.csv").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # nothing trained, no store made here


def test_a_grid_of_many_runs_to_train_needs_train(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, stderr = cli("ood", "--preset", "standard", "--set", "seeds=[0,1,2,3]", "--runs-dir", str(tmp_path / "runs"))
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, stderr
    assert "would train 15 of its 60 runs (75000 steps in all, about" in lines[0]
    assert "CPU-hours (train.threads=1)" in lines[0] and "median of 45 stored runs" in lines[0]
    assert "pass --train" in lines[0] and "--no-train" in lines[0]
    code, stderr = cli("ood", "--preset", "standard", "--train", "--no-train")
    assert code == 2 and "exclude each other" in stderr
    assert list(tmp_path.iterdir()) == []


def test_an_installed_package_says_it_has_no_committed_results(tmp_path, monkeypatch):
    from mmftraj.experiments import report

    monkeypatch.setattr(report, "checkout_root", lambda: None)  # as from a wheel: no repository around it
    monkeypatch.chdir(tmp_path)
    assert load_report_config("standard").store == "benchmarks/records/reports/standard/results"
    code, stderr = cli("lowdata", "--preset", "standard", "--runs-dir", str(tmp_path / "runs"))
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, stderr
    assert "would train 90 of its 90 runs" in lines[0] and "no stored run of this grid to time them by" in lines[0]
    assert "installed without its repository" in lines[0]
    assert list(tmp_path.iterdir()) == []
