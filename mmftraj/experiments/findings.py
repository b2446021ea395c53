"""Every number docs/findings.md, docs/results.md, docs/pusht.md and the README quote from a committed record,
by name: `mmftraj report findings` rewrites each tagged number from the records, `--check` lists
the ones that disagree.

Why a registry of named quantities: a number typed into prose drifts from its record without
anyone noticing (two interval bounds had, by 0.001), and a comparison quoted with a verdict must
carry the verdict of the table it belongs to. Each quantity here is a small function of the files
under benchmarks/records/: a mean ± s.e. over seeds, a paired interval (with its table's
Holm-adjusted p and verdict, mmftraj.experiments.studies), a change between two conditions'
paired differences, a share, a range or a count, formatted as the docs print it. A tag's options
pick the form (`mean`, `verdict`, `holm`, ...) and the decimals (a number); the defaults are each
task's precision.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import UserError
from . import doc_numbers, studies
from .paired import Comparison, family, format_p
from .report import checkout_root

DOCS = ("docs/findings.md", "docs/results.md", "docs/pusht.md", "README.md")
MINUS = "−"
TASK_DIGITS = {"toy2d": 4, "motion": 3, "digits": 2, "maze2d": 1, "cifar": 2}
LEVEL_SLUGS = {"λ = 0": "lambda0", "λ warm-up": "warmup", "λ = 1": "lambda1"}
CONDITION_SLUGS = {"N=256": "N256", "N=4096": "N4096", "held-out square": "held-out-square",
                   "1/64 of episodes": "1of64", "held-out speed": "held-out-speed"}
CONDITIONAL_TANGENT = ("meanflow", "mmf-paper", "mmf-full-tcond")


def number(x: float, digits: int, sign: bool = False) -> str:
    """As the docs print a number: fixed decimals, a typographic minus, `+` where asked."""
    return (f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}").replace("-", MINUS)


# -- values and their printed forms ----------------------------------------------------------------------
@dataclass(frozen=True)
class Estimate:
    """A mean ± standard error over seeds."""

    mean: float
    se: float
    digits: int

    @classmethod
    def of(cls, values, digits: int, scale: float = 1.0) -> Estimate:
        v = scale * np.asarray(list(values.values()) if isinstance(values, dict) else values, dtype=float)
        return cls(float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else math.nan, digits)

    def render(self, form: str, digits: int) -> str:
        forms = {"pm": lambda: f"{number(self.mean, digits)} ± {number(self.se, digits)}",
                 "mean": lambda: number(self.mean, digits), "se": lambda: number(self.se, digits)}
        return _form(forms, form or "pm")


@dataclass(frozen=True)
class Diff:
    """A paired difference: its mean and t-interval, raw p, the Holm-adjusted p and verdict of its
    table, and both sides' means (nan where the record keeps only the difference)."""

    mean: float
    low: float
    high: float
    p: float
    p_holm: float
    verdict: str
    a: float
    b: float
    digits: int

    @classmethod
    def of(cls, c: Comparison, digits: int, scale: float = 1.0) -> Diff:
        a, b = c.means()
        t = c.test
        return cls(scale * t.mean, scale * t.low, scale * t.high, t.p, c.p_holm, c.verdict, scale * a, scale * b,
                   digits)

    def render(self, form: str, digits: int) -> str:
        forms = {"ci": lambda: f"{number(self.mean, digits, True)} {self.render('bounds', digits)}",
                 "bounds": lambda: f"[{number(self.low, digits, True)}, {number(self.high, digits, True)}]",
                 "mean": lambda: number(self.mean, digits, True), "abs": lambda: number(abs(self.mean), digits),
                 "a": lambda: number(self.a, digits), "b": lambda: number(self.b, digits),
                 "absa": lambda: number(abs(self.a), digits), "absb": lambda: number(abs(self.b), digits),
                 "p": lambda: format_p(self.p), "holm": lambda: format_p(self.p_holm),
                 "verdict": lambda: self.verdict,
                 "lower": lambda: f"{number(100 * (1 - self.a / self.b), digits)} %"}
        return _form(forms, form or "ci")


@dataclass(frozen=True)
class Number:
    """One number with its unit (` %`, `×`, ` ms`, ...)."""

    value: float
    digits: int
    unit: str = ""

    def render(self, form: str, digits: int) -> str:
        return _form({"": lambda: number(self.value, digits) + self.unit, "bare": lambda: number(self.value, digits)},
                     form)


@dataclass(frozen=True)
class Span:
    """The smallest and largest of several numbers: `a–b` with a unit."""

    low: float
    high: float
    digits: int
    unit: str = ""

    @classmethod
    def of(cls, values, digits: int, unit: str = "", scale: float = 1.0) -> Span:
        v = [scale * float(x) for x in values]
        return cls(min(v), max(v), digits, unit)

    def render(self, form: str, digits: int) -> str:
        ends = number(self.low, digits), number(self.high, digits)
        forms = {"": lambda: (ends[0] if ends[0] == ends[1] else "–".join(ends)) + self.unit,
                 "to": lambda: f"{number(self.low, digits)} to {number(self.high, digits)}",
                 "low": lambda: number(self.low, digits) + self.unit,
                 "high": lambda: number(self.high, digits) + self.unit}
        return _form(forms, form)


def _form(forms: dict[str, Callable[[], str]], form: str) -> str:
    if form not in forms:
        raise KeyError(form)
    return forms[form]()


def render(value, options: tuple[str, ...]) -> str:
    """A value in the form and decimals its tag's options ask for (`mean`, `3`, `holm` ...)."""
    digits = next((int(o) for o in options if o.isdigit()), value.digits)
    forms = [o for o in options if not o.isdigit()]
    return value.render(forms[0] if forms else "", digits)


# -- the registry ----------------------------------------------------------------------------------------
def quantities(root: Path) -> dict[str, object]:
    """name -> value of every quantity the docs may quote, from the records under `root`
    (benchmarks/records/)."""
    root = Path(root)
    out: dict[str, object] = {}
    for part in (_tangent, _maze2d_tangent, _generalization, _report, _families, _cifar, _gpu, _smoothness,
                 _protocols, _pusht, _latency, _datasize):
        out.update(part(root))
    return out


def _tangent(root: Path) -> dict:
    out = {}
    for task in studies.TANGENT_TASKS:
        digits = TASK_DIGITS[task]
        for label, values in studies.tangent_values(root / "tangent_study" / task).items():
            out[f"tangent.{task}.{label}"] = Estimate.of(values, digits)
        for c in studies.tangent_mmf_family(root / "tangent_study", task):
            out[f"tangent.{task}.mmf-{c.key}"] = Diff.of(c, digits)
    for c in studies.tangent_family(root / "tangent_study"):
        task, level = c.key
        out[f"tangent.{task}.{LEVEL_SLUGS[level]}"] = Diff.of(c, TASK_DIGITS[task])
    for path in sorted((root / "tangent_study").glob("*/*.json")):  # single runs at every step count kept
        r, task = json.loads(path.read_text()), path.parent.name
        out[f"tangent.{task}.{path.stem}"] = Number(r["metric"], TASK_DIGITS[task])
        for field, name in (("by_steps", ""), ("roughness", ".rough")):
            for k, v in r.get(field, {}).items():
                key = "data" if k == "held-out data" else _steps_of(k)
                out[f"tangent.{task}.{path.stem}{name}.{key}"] = Number(v, TASK_DIGITS[task])
    return out


def _steps_of(key: str) -> int:
    return int(key.split("-")[0])


def _maze2d_tangent(root: Path) -> dict:
    values = studies.maze2d_tangent_values(root / "reports" / "standard" / "results")
    out = {f"tangent.maze2d.{label}": Estimate.of(v, 1) for label, v in values.items()}
    out.update({f"tangent.maze2d.{LEVEL_SLUGS[c.key]}": Diff.of(c, 1) for c in studies.maze2d_tangent_family(values)})
    return out


TRAINING_SET = {"toy2d": "swd_training_set", "motion": "swd_data_floor"}  # the training set's own distance


def _generalization(root: Path) -> dict:
    out = {}
    for task in ("toy2d", "motion"):
        folder, digits = root / "generalization" / task, TASK_DIGITS[task]
        for (condition, label), values in studies.generalization_values(folder, "swd").items():
            out[f"gen.{task}.{CONDITION_SLUGS[condition]}.{label}"] = Estimate.of(values, digits)
        for c in studies.generalization_family(folder, "swd"):
            out[f"gen.{task}.{CONDITION_SLUGS[c.key[0]]}.mmf-{c.key[1]}"] = Diff.of(c, digits)
        for (condition, label), values in studies.generalization_values(folder, "held_out_share").items():
            out[f"gen.{task}.{CONDITION_SLUGS[condition]}.share.{label}"] = Estimate.of(values, 1, scale=100)
        shares = studies.generalization_family(folder, "held_out_share", ("higher", "lower"))
        for c in shares:
            out[f"gen.{task}.{CONDITION_SLUGS[c.key[0]]}.share.mmf-{c.key[1]}"] = Diff.of(c, 2, scale=100)
        for c in studies.change_family(root, task):
            out[f"gen.{task}.{CONDITION_SLUGS[c.key[0]]}.change.{c.key[1]}"] = Diff.of(c, digits)
        for name, metric, scale in (("train-set", TRAINING_SET[task], 1), ("floor", "swd_data_floor", 1),
                                    ("data-share", "held_out_share_whole", 100)):
            for (condition, _), values in studies.generalization_values(folder, metric).items():
                out[f"gen.{task}.{CONDITION_SLUGS[condition]}.{name}"] = Estimate.of(values, digits, scale)
    square = studies.generalization_values(root / "generalization" / "toy2d", "held_out_share")
    square = {label: v for (c, label), v in square.items() if c == "held-out square"}
    out["gen.toy2d.held-out-square.share.range"] = Span.of([np.mean(list(v.values())) for v in square.values()],
                                                           1, " %", 100)
    out["gen.toy2d.held-out-square.share.max"] = Number(100 * max(x for v in square.values() for x in v.values()),
                                                        1, " %")
    # mmf − fm and − mmf-paper on toy2d at every data size: fixed sets (generalization) and fresh points
    fresh = {c.key: c.test.mean for c in studies.tangent_mmf_family(root / "tangent_study", "toy2d")}
    sizes = {c.key: c.test.mean for c in studies.generalization_family(root / "generalization" / "toy2d", "swd")
             if c.key[0] in ("N=256", "N=4096")}
    for label, also in (("fm@1", fresh["fm"]), ("fm@4", None), ("mmf-paper", fresh["mmf-paper"])):
        means = [m for (_, other), m in sizes.items() if other == label] + ([also] if also is not None else [])
        out[f"gen.toy2d.sizes.mmf-{label}"] = Span.of(means, 2)
    # two comparisons printed in no table, each a family of one (quoted where they are not separable)
    motion = studies.generalization_values(root / "generalization" / "motion", "swd")
    few = "1/64 of episodes"
    train_set = studies.generalization_values(root / "generalization" / "motion", "swd_data_floor")[few, "mmf"]
    for name, a, b in (("mmf-full-train-set", motion[few, "mmf-full"], train_set),
                       ("fm@16-mmf-full", motion[few, "fm@16"], motion[few, "mmf-full"])):
        c = family(name, [(name, a, b)], name.split("-mmf")[0].removesuffix("-train-set"), studies.LOWER_IS_BETTER)
        out[f"gen.motion.1of64.{name}"] = Diff.of(c[0], 3)
    return out


def _report(root: Path) -> dict:
    out = {}
    for kind in ("ood", "lowdata"):
        folder = root / "reports" / "standard" / kind
        summary, paired = pd.read_csv(folder / "report.csv"), pd.read_csv(folder / "paired.csv")
        for r in summary.itertuples():
            name = _report_name(kind, r.split, r.condition, r.fraction, r.variant)
            out[name] = Estimate(r.score_mean, r.score_se, 1)
            out[f"{name}.success"] = Number(100 * r.success_mean, 0, " %")
        for r in paired.itertuples():
            name = _report_name(kind, r.split, r.condition, r.fraction, "mmf-" + r.comparison.split(" - ")[1])
            out[name] = Diff(r.diff_mean, r.ci_low, r.ci_high, r.p, r.p_holm, r.verdict, math.nan, math.nan, 1)
        tests = paired.drop_duplicates("test")
        out[f"{kind}.rows"] = Number(len(paired), 0)
        out[f"{kind}.tests"] = Number(len(tests), 0)
        out[f"{kind}.raw"] = Number(int((tests.p < 0.05).sum()), 0)
        out[f"{kind}.separable"] = Number(int((tests.p_holm < 0.05).sum()), 0)
        out[f"{kind}.expected"] = Number(0.05 * len(tests), 1)  # raw intervals excluding 0 by chance alone
        runs = pd.read_csv(folder / "per_run.csv").drop_duplicates("run")
        out[f"{kind}.runs"] = Number(len(runs), 0)
        out[f"{kind}.unstable"] = Number(int(runs.spikes.sum() + runs.diverged.sum()), 0)
        out[f"{kind}.final-mse"] = Span.of(runs.groupby("variant").final_mse.median(), 4)
        full = runs[runs.run.str.contains("-all-f1-")]
        out[f"{kind}.full.runs"] = Number(len(full), 0)
        out[f"{kind}.full.final-mse"] = Span.of(full.groupby("variant").final_mse.median(), 4)
        out[f"{kind}.success.min"] = Number(100 * summary[summary.group == "id"].success_mean.min(), 0, " %")
    out.update(_report_ranges(root / "reports" / "standard"))
    return out


def _report_name(kind: str, split: str, condition: str, fraction: float, variant: str) -> str:
    if kind == "lowdata":
        return f"lowdata.{fraction:g}.{variant}"
    return f"ood.{split.removeprefix('umaze-')}.{condition}.{variant}"


def _report_ranges(folder: Path) -> dict:
    """The ranges the findings quote over the report's cells."""
    ood, low = pd.read_csv(folder / "ood" / "report.csv"), pd.read_csv(folder / "lowdata" / "report.csv")
    cell = {(s, c): g for (s, c), g in ood.groupby(["split", "condition"])}
    base = cell["umaze-dynamics", "standard"].set_index("variant").score_mean
    loss = max(float((base - g.set_index("variant").score_mean).max())
               for (s, c), g in cell.items() if s == "umaze-dynamics" and c != "standard")
    spread = low.groupby("fraction").score_mean.agg(lambda v: v.max() - v.min())
    low_paired = pd.read_csv(folder / "lowdata" / "paired.csv")
    paper = low_paired[low_paired.comparison == "mmf - mmf-paper"].diff_mean
    standard = cell["umaze-dynamics", "standard"]
    out = {"ood.standard.min": Number(standard.score_mean.min(), 1),
           "ood.standard.scores": Span.of(standard.score_mean, 0),
           "ood.standard.success.min": Number(100 * standard.success_mean.min(), 0, " %"),
           "lowdata.success": Span.of(low.success_mean, 0, " %", scale=100),
           "ood.dynamics.max-loss": Number(loss, 1),
           "lowdata.cells": Span.of(low.score_mean, 0), "lowdata.spread": Number(float(spread.max()), 1),
           "lowdata.best-at-least": Number(float(low[low.fraction == low.fraction.min()].score_mean.max()), 1),
           "lowdata.mmf-mmf-paper": Span.of(paper, 1)}
    for split, condition in (("umaze-anywhere", "anywhere"), ("umaze-layout", "ood"), ("umaze-goal", "id"),
                             ("umaze-start", "id"), ("umaze-goal", "ood"), ("umaze-start", "ood")):
        g = cell[split, condition]
        name = f"ood.{split.removeprefix('umaze-')}.{condition}"
        out[f"{name}.scores"] = Span.of(g.score_mean, 1)
        out[f"{name}.se"] = Span.of(g.score_se, 0)
        out[f"{name}.success"] = Span.of(g.success_mean, 0, " %", scale=100)
    out["ood.held-in.scores"] = Span.of(pd.concat([cell["umaze-goal", "id"].score_mean,
                                                   cell["umaze-start", "id"].score_mean]), 1)
    return out


def _families(root: Path) -> dict:
    """How many tests each study table adjusts over (the report's counts are `ood.tests` and
    `lowdata.tests`)."""
    out = {"families.tangent": len(studies.tangent_family(root / "tangent_study")),
           "families.maze2d-tangent": len(studies.maze2d_tangent_family(
               studies.maze2d_tangent_values(root / "reports" / "standard" / "results"))),
           "families.cifar.mmf": len(studies.cifar_family(root / "cifar_small", "mmf@1")),
           "families.cifar.meanflow": len(studies.cifar_family(root / "cifar_small", "meanflow@1"))}
    for task in studies.TANGENT_TASKS:
        out[f"families.tangent-mmf.{task}"] = len(studies.tangent_mmf_family(root / "tangent_study", task))
    for task in ("toy2d", "motion"):
        folder = root / "generalization" / task
        out[f"families.gen.{task}.swd"] = len(studies.generalization_family(folder, "swd"))
        out[f"families.gen.{task}.share"] = len(studies.generalization_family(folder, "held_out_share"))
        out[f"families.gen.{task}.change"] = len(studies.change_family(root, task))
    return {name: Number(n, 0) for name, n in out.items()}


def _gpu(root: Path) -> dict:
    """The CIFAR step on one H100 (images/s, compiled; du/dt's relative error) and its FLOPs."""
    out = {}
    folder = root / "cifar_h100" / "compile-tf32-jvp"
    for name, file in (("gpu.compile", "cifar_compile.json"), ("gpu.compile-tf32", "cifar_compile_tf32.json")):
        for r in json.loads((folder / file).read_text())["rows"]:
            out[f"{name}.{r['variant'].split('@')[0]}"] = Number(r["images_per_s"], 0)
    for r in json.loads((folder / "jvp_precision.json").read_text())["rows"]:
        out[f"gpu.jvp.{r['backend']}-{r['eps']:g}.{'tf32' if r['tf32'] else 'fp32'}"] = Number(100 * r["rel_error"], 1,
                                                                                             " %")
    for r in json.loads((root / "cifar_cpu" / "jvp_precision_simtf32.json").read_text())["rows"]:
        out[f"cpu.jvp-simtf32.{r['backend']}-{r['eps']:g}.{'tf32' if r['tf32'] else 'fp32'}"] = \
            Number(1e3 * r["rel_error"], 1, "e-3")
    for r in json.loads((root / "cifar_cpu" / "step_flops.json").read_text())["rows"]:
        out[f"flops.{r['variant'].replace('@objective.jvp=', '-')}"] = Number(r["total"], 0)
    return out


def _cifar(root: Path) -> dict:
    folder = root / "cifar_small"
    out = {f"cifar.{label}": Estimate.of(v, 2) for label, v in studies.cifar_values(folder).items()}
    for reference in ("mmf@1", "meanflow@1"):
        for c in studies.cifar_family(folder, reference):
            out[f"cifar.{reference.split('@')[0]}-{c.key}"] = Diff.of(c, 2)
    records = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    minutes = {v: np.mean([r["train_time_s"] for r in records if r["variant"] == v]) / 60
               for v in ("fm", "meanflow", "mmf")}
    out.update({f"cifar.minutes.{v}": Number(m, 0) for v, m in minutes.items()})
    out["cifar.cost.mmf-fm"] = Number(minutes["mmf"] / minutes["fm"], 1, "×")  # same steps: per step too
    out["cifar.floor"] = Number(float(np.mean([r["fd_data_floor"] for r in records])), 2)
    out["cifar.accuracy"] = Number(100 * float(np.mean([r["classifier_accuracy"] for r in records])), 1, " %")
    out["cifar.parameters"] = Number(records[0]["parameters"] / 1e6, 2, "M")
    out["cifar.steps"] = Number(records[0]["steps"], 0)
    return out


def _smoothness(root: Path) -> dict:
    """motion_smoothness/results.json: one entry per kept tangent-study run (label from its folder)."""
    runs = json.loads((root / "motion_smoothness" / "results.json").read_text())
    by: dict[str, list[dict]] = {}
    for r in runs:
        by.setdefault(Path(r["run"]).name.rsplit("-s", 1)[0], []).append(r)
    out = {"smooth.floor": Number(runs[0]["floor_train_vs_held_out"], 3)}
    for label, rs in by.items():
        out[f"smooth.gap.{label}"] = Span.of([r["speed"]["1-step"]["gap_share"] for r in rs], 0, " %", 100)
        out[f"smooth.leak.{label}"] = Span.of([r["leak"]["high_pass_power_explained"] for r in rs], 0, " %", 100)
        out[f"smooth.rough.{label}"] = Span.of([r["samples"]["1-step"]["roughness"] / r["held_out"]["roughness"]
                                                for r in rs], 0, "×")
        band = [100 * r["speed"]["1-step"]["band_share"] for r in rs]
        out[f"smooth.band.{label}"] = Number(float(np.mean(band)), 1, " %")
        out[f"smooth.band-range.{label}"] = Span.of(band, 1, " %")
    for label, rs in by.items():
        for r in rs:
            seed = Path(r["run"]).name.rsplit("-s", 1)[1]
            out[f"smooth.sg7.{label}-s{seed}"] = Number(r["savgol"]["7"]["roughness"] / r["held_out"]["roughness"], 1)
        out[f"smooth.rough2.{label}"] = Span.of([r["samples"]["2-step"]["roughness"] / r["held_out"]["roughness"]
                                                 for r in rs if "2-step" in r["samples"]], 0, "×")
    for r in json.loads((root / "motion_smoothness" / "longer_training.json").read_text()):
        out[f"smooth.longer.{Path(r['run']).name}"] = Number(r["samples"]["1-step"]["swd"], 3)
    out["smooth.leak.conditional"] = Span.of([r["leak"]["high_pass_power_explained"] for label in CONDITIONAL_TANGENT
                                              for r in by[label]], 0, " %", 100)
    return out


def _protocols(root: Path) -> dict:
    out = {}
    for path in sorted((root / "maze2d_protocols").glob("*.json")):
        r = json.loads(path.read_text())
        name = f"protocols.{r['maze']}.{r['protocol']}.{r['goals']}"
        out[name] = Estimate(r["score_mean"], r["score_se"], 1)
        out[f"{name}.success"] = Number(100 * r["success_rate"], 0, " %")
        out[f"{name}.plans"] = Number(r["plans_per_episode"], 1)
    return out


def _pusht(root: Path) -> dict:
    out, by_variant = {}, {}
    for path in sorted((root / "pusht" / "records").glob("*.json")):
        r = json.loads(path.read_text())["results"]
        last = studies.pusht_last_mean(r)
        out[f"pusht.{path.stem}.last10"] = Number(last, 3)
        variant = path.stem.rsplit("-s", 1)[0].removesuffix("-e90")  # <label>[-e<episodes>]; 90: the headline
        by_variant.setdefault(variant, []).append((r["selected_test_score"], last))
    for variant, runs in by_variant.items():  # over the training seeds stored so far
        out[f"pusht.{variant}.chosen"] = Estimate.of([c for c, _ in runs], 3)
        out[f"pusht.{variant}.last10"] = Estimate.of([m for _, m in runs], 3)
        out[f"pusht.{variant}"] = Number(float(np.mean([m for _, m in runs])), 3)  # the README's short form
        out[f"pusht.{variant}.n"] = Number(len(runs), 0)  # seeds
    folder = root / "pusht" / "records"
    for episodes in sorted({e for e, _ in studies.pusht_values(folder)}):
        comparisons = studies.pusht_family(folder, episodes)
        out.update({f"pusht.e{episodes}.mmf-{c.key[1]}": Diff.of(c, 3) for c in comparisons})
        out[f"pusht.e{episodes}.tests"] = Number(sum(math.isfinite(c.p_holm) for c in comparisons), 0)
    latency = json.loads((root / "pusht" / "latency.json").read_text())
    out.update({f"pusht.latency.{k}": Number(row["median_ms"], 1, " ms") for k, row in latency["rows"].items()})
    return out


def _datasize(root: Path) -> dict:
    """toy2d's data-size grid: each cell's mean ± s.e. over seeds, `mmf` minus each (one family)."""
    folder, out = root / "toy2d_datasize", {}
    for (size, label), values in studies.datasize_values(folder).items():
        out[f"datasize.N{size}.{label}"] = Estimate.of(values, 4)
    comparisons = studies.datasize_family(folder)
    for c in comparisons:
        size, label = c.key
        out[f"datasize.N{size}.mmf-{label}"] = Diff.of(c, 4)
    floors = studies.datasize_floors(folder)
    out.update({f"datasize.N{size}.train-set": Estimate.of(v, 4) for size, v in floors.items()})
    out["datasize.tests"] = Number(sum(math.isfinite(c.p_holm) for c in comparisons), 0)
    return out


def _latency(root: Path) -> dict:
    rows = json.loads((root / "plan_latency" / "batch1_steps.json").read_text())["rows"]
    return {f"latency.{r['env'].split('-')[1]}.k{r['steps']}.c{r['candidates']}": Number(r["median_ms"], 1, " ms")
            for r in rows}


# -- the docs --------------------------------------------------------------------------------------------
def records_root() -> Path:
    root = checkout_root()
    if root is None:
        raise UserError("`report findings` rewrites the docs of a checkout from its benchmarks/records/; this "
                        "mmftraj is installed without its repository")
    return root


def report_findings(check: bool, echo: Callable[[str], None] = print, root: Path | None = None, docs=DOCS) -> int:
    """`mmftraj report findings [--check]`: rewrite (or only compare) every tagged number of the
    docs from the records and list what differed; the exit code is 1 where a number disagrees
    under --check, or a tag names no quantity or has no number of its form before it."""
    root = Path(root) if root is not None else records_root()
    findings = rebuild(root, docs, check)
    for f in findings:
        echo(str(f).replace(f"{root}/", "", 1))
    broken = [f for f in findings if not (f.quoted and f.generated)]
    verb = "differ from" if check else "rewritten from"
    echo(f"{len(findings) - len(broken)} tagged numbers {verb} their records, {len(broken)} tags could not be "
         f"checked ({', '.join(docs)})")
    return 1 if broken or (check and findings) else 0


def rebuild(root: Path, docs=DOCS, check: bool = False) -> list[doc_numbers.Finding]:
    """Rewrite every tagged number of `docs` (paths under the checkout `root`) from the records;
    with `check`, write nothing. Returns what differed or could not be placed."""
    values = quantities(root / "benchmarks" / "records")

    def make(name: str, options: tuple[str, ...]) -> str | None:
        if name not in values:
            return None
        try:
            return render(values[name], options)
        except (KeyError, ValueError):
            return None

    findings = []
    for doc in docs:
        path = root / doc
        text, found = doc_numbers.update(path, make)
        findings += found
        if found and not check:
            path.write_text(text)
    return findings
