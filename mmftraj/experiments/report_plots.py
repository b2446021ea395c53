"""Pictures of a report (matplotlib, Agg): score vs data fraction, in-distribution vs OOD per
split, and training curves with their spikes, one colour per objective variant throughout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..evaluation.figures import pyplot, save_png
from .stability import spike_mask

COLORS = {"fm": "tab:gray", "meanflow": "tab:orange", "mmf-paper": "tab:red", "mmf": "tab:blue",
          "mmf-full": "tab:green"}
SPARE = ["tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan"]


def _color(variant: str, i: int) -> str:
    """One colour per variant everywhere; `fm@k` rows in greys, darker with more steps."""
    if variant.startswith("fm@"):
        k = int(variant.split("@")[1]) if variant.split("@")[1].isdigit() else 1
        return {1: "silver", 2: "darkgray", 4: "gray"}.get(k, "dimgray")
    return COLORS.get(variant, SPARE[i % len(SPARE)])


def plot_lowdata(summary: pd.DataFrame, path: Path) -> None:
    """Score and success vs fraction of episodes (log x), mean ± s.e. over seeds per variant."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for i, (variant, g) in enumerate(summary.groupby("variant", sort=False)):
        g = g.sort_values("fraction")
        c = _color(variant, i)
        axes[0].errorbar(g.fraction, g.score_mean, yerr=g.score_se.fillna(0), marker="o", capsize=3, color=c,
                         label=variant)
        axes[1].plot(g.fraction, 100 * g.success_mean, marker="o", color=c, label=variant)
    fractions = sorted(summary["fraction"].unique())
    for ax, label in zip(axes, ("normalized score (mean ± s.e. over seeds)", "success rate (%)"), strict=True):
        ax.set_xscale("log")
        ax.set_xticks(fractions, [f"{100 * f:g}%" for f in fractions])
        ax.minorticks_off()
        ax.set_xlabel("fraction of training episodes")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle("low-data sweep")
    save_png(fig, path)


def plot_id_vs_ood(summary: pd.DataFrame, path: Path) -> None:
    """One panel per split: bars per condition (in-distribution first), grouped by variant."""
    plt = pyplot()
    splits = list(dict.fromkeys(summary["split"]))
    fig, axes = plt.subplots(1, len(splits), figsize=(4.2 * len(splits), 3.8), squeeze=False)
    for ax, split in zip(axes[0], splits, strict=True):
        s = summary[summary["split"] == split]
        conds = list(dict.fromkeys(s.sort_values("group", key=lambda g: g != "id", kind="stable")["condition"]))
        variants = list(dict.fromkeys(s["variant"]))
        width = 0.8 / max(len(variants), 1)
        x = np.arange(len(conds))
        for i, v in enumerate(variants):
            sv = s[s["variant"] == v].set_index("condition").reindex(conds)
            ax.bar(x + (i - (len(variants) - 1) / 2) * width, sv.score_mean, width, yerr=sv.score_se.fillna(0),
                   capsize=2, color=_color(v, i), label=v)
        ax.set_xticks(x, [f"{c}\n({'id' if (s[s.condition == c].group == 'id').all() else 'ood'})" for c in conds])
        ax.set_title(split)
        ax.axhline(0, color="k", lw=0.5)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("normalized score (mean ± s.e.)")
    axes[0][0].legend(fontsize=8)
    fig.suptitle("in-distribution vs out-of-distribution")
    save_png(fig, path)


def plot_loss_curves(curves: dict[str, pd.DataFrame], path: Path, spike_factor: float = 3.0) -> None:
    """mse vs step for every run, one panel per variant (run names start with the variant);
    spikes (as in report.run_stability) are marked with crosses."""

    plt = pyplot()
    by_variant: dict[str, list] = {}
    for name, df in curves.items():
        variant = next((v for v in sorted(COLORS, key=len, reverse=True) if name.startswith(v + "-")),
                       name.split("-")[0])
        by_variant.setdefault(variant, []).append((name, df))
    variants = list(by_variant)
    fig, axes = plt.subplots(1, max(len(variants), 1), figsize=(3.8 * max(len(variants), 1), 3.4), squeeze=False,
                             sharey=True)
    for i, (ax, v) in enumerate(zip(axes[0], variants, strict=False)):
        n_spikes = 0
        for _, df in by_variant[v]:
            if df.empty:
                continue
            col = "mse" if "mse" in df.columns else "loss"
            y = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
            ax.plot(df["step"], y, color=_color(v, i), alpha=0.35, lw=0.8)
            spike = spike_mask(y, spike_factor)
            n_spikes += int(spike.sum())
            ax.plot(df["step"][spike], y[spike], "x", color="red", ms=5)
        ax.set_yscale("log")
        ax.set_title(f"{v}: {len(by_variant[v])} runs, {n_spikes} spikes")
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("training mse (unweighted)")
    save_png(fig, path)
