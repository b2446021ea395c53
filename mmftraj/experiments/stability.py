"""Training stability of a run from its metrics.csv: loss spikes and divergence (report and plots)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def read_metrics(path: Path) -> pd.DataFrame:
    path = Path(path)
    return pd.read_csv(path) if path.is_file() else pd.DataFrame(columns=["step", "loss", "mse"])


def spike_mask(values: np.ndarray, factor: float = 3.0, window: int = 5) -> np.ndarray:
    """True where a logged value exceeds `factor` × the median of the `window` values before it."""
    prev = pd.Series(np.asarray(values, dtype=float)).shift(1).rolling(window, min_periods=3).median().to_numpy()
    return np.isfinite(prev) & (np.asarray(values, dtype=float) > factor * prev)


def run_stability(metrics_csv: Path, spike_factor: float = 3.0) -> dict:
    """Loss spikes and divergence of one run from its metrics.csv (on the unweighted mse: the
    adaptively weighted loss sits near 1 whatever happens, so it hides spikes).

    spike: a logged mse above spike_factor × the median of the 5 logged values before it;
    diverged: a non-finite mse/loss/grad_norm, or a final mse above spike_factor × the run's minimum."""
    m = read_metrics(metrics_csv)
    col = "mse" if "mse" in m.columns else "loss"
    x = pd.to_numeric(m[col], errors="coerce").to_numpy(dtype=float) if len(m) else np.zeros(0)
    if len(x) == 0:
        return {"spikes": 0, "diverged": False, "final_mse": float("nan")}
    finite = np.isfinite(x)
    for extra in ("loss", "grad_norm"):
        if extra in m.columns:
            finite &= np.isfinite(pd.to_numeric(m[extra], errors="coerce").to_numpy(dtype=float))
    spikes = int(spike_mask(x, spike_factor).sum())
    diverged = bool((~finite).any() or x[-1] > spike_factor * np.nanmin(x))
    return {"spikes": spikes, "diverged": diverged, "final_mse": float(x[-1])}
