"""The paired statistics the report and the studies share: the t quantile and p-value against
closed forms and scipy, and Holm's adjustment on a family worked by hand."""

import math

import numpy as np
import pytest

from mmftraj.experiments.paired import family, holm, mean_interval, paired_test, t_pvalue, t_quantile, verdict


def test_holm_adjusts_a_family_worked_by_hand():
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> kept at 0.06 (step-down)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == [1.0, 1.0]  # capped at 1, and never below an earlier step
    assert holm([0.02]) == [0.02]  # a family of one is not adjusted
    adjusted = holm([0.01, math.nan, 0.02])  # a comparison without a test is no member of the family
    assert math.isnan(adjusted[1]) and adjusted[0] == pytest.approx(0.02) and adjusted[2] == pytest.approx(0.02)


def test_verdict_follows_the_adjusted_p_not_the_raw_one():
    raw = [0.01, 0.04, 0.03, 0.005]
    words = [verdict(mean, p, "mmf") for mean, p in zip([1.0, 1.0, -1.0, -2.0], holm(raw), strict=True)]
    assert words == ["mmf better", "not separable", "not separable", "mmf worse"]  # raw p < 0.05 for all four
    assert verdict(1.0, math.nan, "mmf") == "n/a"
    assert verdict(-1.0, 0.01, "mmf", words=("lower", "higher")) == "mmf higher"


def test_t_pvalue_matches_closed_forms():
    for t in (0.0, 0.3, 1.0, 2.5, 12.7, 60.0):
        assert t_pvalue(t, 1) == pytest.approx(1 - 2 / math.pi * math.atan(t), rel=1e-10, abs=1e-15)
        assert t_pvalue(-t, 2) == pytest.approx(1 - t / math.sqrt(2 + t * t), rel=1e-10, abs=1e-15)


def test_paired_test_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for n in (2, 3, 5, 30):
        for shift in (0.0, 0.4, 3.0):
            d = rng.normal(shift, 1.0, n)
            r = paired_test(d)
            low, high = stats.t.interval(0.95, n - 1, loc=d.mean(), scale=stats.sem(d))
            assert r.p == pytest.approx(stats.ttest_1samp(d, 0.0).pvalue, rel=1e-9)
            assert (r.low, r.high) == (pytest.approx(low, rel=1e-5), pytest.approx(high, rel=1e-5))
            assert mean_interval(d) == (r.mean, r.low, r.high)
    assert paired_test([0.2, 0.2]).p == 0.0 and paired_test([0.0, 0.0]).p == 1.0  # no spread
    one = paired_test([0.5])
    assert one.n == 1 and math.isnan(one.p) and math.isnan(one.low)


def test_t_quantile_against_scipy():
    stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 4, 9, 30):
        for p in (0.9, 0.975, 0.995):
            assert t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), rel=2e-4)


def test_a_family_pairs_on_shared_seeds_and_adjusts_over_its_rows():
    """The study tables' rows: a − b on the seeds both sides have, Holm over the rows of one table."""
    a = {0: 1.0, 1: 2.0, 2: 3.0, 7: 100.0}  # seed 7 has no partner and is left out
    rows = [("near", a, {0: 0.0, 1: 1.1, 2: 1.9}),  # differences 1.0, 0.9, 1.1: p = 0.0039 alone
            ("far", a, {0: 1.5, 1: 2.0, 2: 3.5})]  # −0.5, 0, −0.5: p = 0.18
    near, far = family("table", rows, "mmf", words=("worse", "better"))
    assert near.seeds == [0, 1, 2] and near.test.n == 3 and near.test.mean == pytest.approx(1.0)
    assert near.test.p == pytest.approx(paired_test([1.0, 0.9, 1.1]).p)
    assert near.p_holm == pytest.approx(2 * near.test.p) and near.verdict == "mmf worse"  # lower is better here
    assert far.p_holm == pytest.approx(max(far.test.p, near.p_holm)) and far.verdict == "not separable"
    assert near.means() == (pytest.approx(2.0), pytest.approx(1.0))
    alone = family("one", rows[:1], "mmf")[0]
    assert alone.p_holm == alone.test.p and alone.verdict == "mmf better"


def test_pusht_family_pairs_mmf_with_each_variant_on_seed_and_holm_adjusts_per_size(tmp_path):
    import json

    from mmftraj.experiments.studies import pusht_family

    scores = {("mmf", 90): [0.70, 0.75, 0.80], ("fm", 90): [0.60, 0.70, 0.72], ("meanflow", 90): [0.71, 0.74, 0.80],
              ("mmf-paper", 90): [0.5], ("mmf", 10): [0.3, 0.4], ("fm", 10): [0.2, 0.1]}
    for (label, episodes), values in scores.items():
        for seed, v in enumerate(values):
            record = {"label": label, "episodes": episodes, "seed": seed, "results": {"selected_test_score": v}}
            (tmp_path / f"{label}-e{episodes}-s{seed}.json").write_text(json.dumps(record))
    rows = {c.key: c for c in pusht_family(tmp_path, 90)}
    assert set(rows) == {(90, "fm"), (90, "meanflow")}  # one seed of mmf-paper: no test; 10 episodes: its own family
    assert math.isclose(rows[(90, "fm")].test.mean, (0.10 + 0.05 + 0.08) / 3)
    raw = sorted(c.test.p for c in rows.values())
    assert math.isclose(min(c.p_holm for c in rows.values()), min(1.0, 2 * raw[0]))
    assert [c.key for c in pusht_family(tmp_path, 10)] == [(10, "fm")]
