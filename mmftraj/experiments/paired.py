"""Paired comparisons over training seeds: a t-interval for the mean difference, a two-sided
t-test, Holm's adjustment over a family of comparisons, and a family of compared rows.

Why one module: the report and every study in benchmarks/ compare variants paired on the seed,
and a table should call two variants separable by one rule wherever it is printed. Why no scipy:
the package does not depend on it (the tests check these against it).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

ALPHA = 0.05  # a family-wise error rate: a comparison is separable when its Holm-adjusted p is below it


def t_quantile(p: float, df: int) -> float:
    """Student-t quantile by bisection on a numerically integrated CDF (no scipy needed)."""
    if df < 1:
        return float("nan")
    logc = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)

    def cdf(x: float) -> float:
        t = np.linspace(0.0, abs(x), 4001)
        pdf = np.exp(logc - (df + 1) / 2 * np.log1p(t * t / df))
        area = float(np.sum((pdf[1:] + pdf[:-1]) * np.diff(t)) / 2)  # trapezoid
        return 0.5 + math.copysign(area, x)

    lo, hi = 0.0, 1.0
    while cdf(hi) < p:
        hi *= 2
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) < p else (lo, mid)
    return (lo + hi) / 2


def t_pvalue(t: float, df: int) -> float:
    """Two-sided p of a t statistic: I_{df/(df+t²)}(df/2, 1/2), the regularized incomplete beta
    (exact to ~1e-14, where integrating the density would lose the far tail)."""
    if df < 1 or not math.isfinite(t):
        return 0.0 if math.isinf(t) else float("nan")
    return _betainc(df / 2, 0.5, df / (df + t * t))


def _betainc(a: float, b: float, x: float) -> float:
    """I_x(a, b) from its continued fraction, on the side where it converges fast."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, 1.0 - x) / b


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The incomplete beta's continued fraction by the modified Lentz method."""
    tiny = 1e-300

    def guard(v: float) -> float:
        return v if abs(v) > tiny else tiny

    c, d = 1.0, 1.0 / guard(1.0 - (a + b) * x / (a + 1))
    h = d
    for m in range(1, 500):
        for aa in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                   -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 / guard(1.0 + aa * d)
            c = guard(1.0 + aa / c)
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


@dataclass(frozen=True)
class Paired:
    """Mean of paired differences over n seeds, its standard error, t-interval and two-sided p
    (nan where n < 2: one pair has no spread to test against)."""

    n: int
    mean: float
    se: float
    low: float
    high: float
    p: float


def paired_test(d, confidence: float = 0.95) -> Paired:
    """The t-interval and two-sided one-sample t-test of paired differences d against 0. With no
    spread at all, p is 0 for a nonzero mean and 1 for a zero one."""
    d = np.asarray(d, dtype=float)
    n = len(d)
    mean = float(d.mean())
    if n < 2:
        return Paired(n, mean, math.nan, math.nan, math.nan, math.nan)
    se = float(d.std(ddof=1) / math.sqrt(n))
    half = t_quantile(0.5 + confidence / 2, n - 1) * se
    p = t_pvalue(mean / se, n - 1) if se > 0 else (0.0 if mean else 1.0)
    return Paired(n, mean, se, mean - half, mean + half, p)


def mean_interval(d, confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): a t-interval for the mean of paired differences d (nan bounds if n < 2)."""
    r = paired_test(d, confidence)
    return r.mean, r.low, r.high


def holm(pvalues) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error), in the input's order; the family is
    the finite p-values (a nan, a comparison with one pair, stays nan and counts for nothing)."""
    p = [float(v) for v in pvalues]
    finite = [i for i in range(len(p)) if math.isfinite(p[i])]
    adjusted, running, m = [math.nan] * len(p), 0.0, len(finite)
    for rank, i in enumerate(sorted(finite, key=lambda i: p[i])):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def verdict(mean: float, p_adjusted: float, reference: str, words: tuple[str, str] = ("better", "worse"),
            alpha: float = ALPHA) -> str:
    """`<reference> better` / `worse` (by the sign of reference − other) when the adjusted test
    rejects at alpha, else `not separable`; `n/a` without a test."""
    if not math.isfinite(p_adjusted):
        return "n/a"
    if p_adjusted >= alpha:
        return "not separable"
    return f"{reference} {words[0] if mean > 0 else words[1]}"


def format_p(p: float) -> str:
    """A p-value as the tables print it: 3 decimals, `< 0.001` below, `–` without a test."""
    if not math.isfinite(p):
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


@dataclass(frozen=True)
class Comparison:
    """One row of a printed paired table: `a` minus `b` on the seeds both have, with the Holm-adjusted
    p and the verdict of the table it is printed in (its family; a row printed in no table is a family
    of one, so its adjusted p is its own)."""

    family: str
    key: Hashable  # what the row compares, as its table names it
    a: Mapping[int, float]  # seed -> value (the reference side)
    b: Mapping[int, float]
    test: Paired
    p_holm: float
    verdict: str

    @property
    def seeds(self) -> list[int]:
        return sorted(set(self.a) & set(self.b))

    def means(self) -> tuple[float, float]:
        """Both sides' means over the paired seeds."""
        return (float(np.mean([self.a[s] for s in self.seeds])), float(np.mean([self.b[s] for s in self.seeds])))


def family(name: str, rows: Sequence[tuple[Hashable, Mapping[int, float], Mapping[int, float]]], reference: str,
           words: tuple[str, str] = ("better", "worse"), confidence: float = 0.95) -> list[Comparison]:
    """Each row (key, a, b) compared paired on seed, Holm-adjusted over the rows: the family is one
    printed table. `words` name the sign of a − b for the verdict (`("worse", "better")` where
    lower is better); a row with fewer than 2 shared seeds has no test and counts for nothing."""
    tests = []
    for _, a, b in rows:
        seeds = sorted(set(a) & set(b))
        tests.append(paired_test([a[s] - b[s] for s in seeds], confidence))
    adjusted = holm([t.p for t in tests])
    return [Comparison(name, key, a, b, t, p, verdict(t.mean, p, reference, words))
            for (key, a, b), t, p in zip(rows, tests, adjusted, strict=True)]
