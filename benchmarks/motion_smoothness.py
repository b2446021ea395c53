"""Why one-step motion samples jitter, and what removes it at what cost.

    python benchmarks/motion_smoothness.py runs/motion/<run> [more runs ...] [--out FILE.json]

For each trained motion run (its latest checkpoint, the EMA weights) this draws as many samples
as the run's own evaluation compares (same noise seed), then measures, in normalized units:
- the sliced Wasserstein distance to held-out windows and the roughness (mean squared second
  difference in time) of k-step samples, beside the data's;
- where the roughness lives: the power spectrum along time of samples and data (so white noise
  shows as a flat floor at high frequencies the data does not have);
- whether that floor is the input noise left over: a one-step sample is x = ε − u(ε, 0, 1), so a
  network that cancels ε imperfectly leaves β·ε in x. β is the regression coefficient of the
  samples' high-pass part on the noise's high-pass part (0: no leak), with the share of the
  samples' high-pass power it explains;
- what a window distance misses: the planar speed of each window (mmftraj.data.speed.planar_speed),
  its 1-D Wasserstein distance to the held-out windows' speeds, and the share of windows moving
  between the gait table's two gaits (1.8-2.4 m/s; walks span 1.0-1.6, runs 2.6-3.4, data: none),
  and in the 1.2-1.4 m/s band that benchmarks/generalization.py holds out (these runs saw it);
- post-filters (Savitzky-Golay along time, the filter mmftraj's `eval.smooth` uses) at several
  windows: the filtered samples' distance and roughness, and what the same filter does to held-out
  data (its own bias).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from mmftraj.checkpoint import latest_checkpoint
from mmftraj.core import ModularMeanFlow, sample
from mmftraj.data.motion import load_windows
from mmftraj.data.speed import in_band, time_step, window_speeds
from mmftraj.evaluation.motion_metrics import roughness, window_distance
from mmftraj.experiments import grid
from mmftraj.signal import savgol
from mmftraj.tasks import motion

WINDOWS = (5, 7, 9, 11, 15)
GAP = (1.8, 2.4)  # m/s: between the gait table's walking and running speeds
BAND = (1.2, 1.4)  # m/s: the walking speeds benchmarks/generalization.py holds out of training


def speed_report(windows, x: torch.Tensor, reference: np.ndarray) -> dict:
    """Planar speeds of (N, H, D) normalized windows against the held-out windows' (same N); the
    step-by-step path speed (chord 1) beside them shows what jitter does to a naive speed."""
    v = window_speeds(windows, x)
    return {"mean": float(v.mean()), "w1_to_held_out": float(np.abs(np.sort(v) - np.sort(reference)).mean()),
            "gap_share": float(((v > GAP[0]) & (v < GAP[1])).mean()),
            "band_share": float(in_band(v, BAND).mean()),
            "path_speed_median": float(np.median(window_speeds(windows, x, chord=1)))}


def high_pass(x: torch.Tensor) -> torch.Tensor:
    """What a cubic 7-step Savitzky-Golay fit along time does not explain; (N, H, D)."""
    return x - savgol(x, 7)


def spectrum(x: torch.Tensor) -> np.ndarray:
    """Mean power per temporal frequency bin of the step-to-step changes (first differences,
    Hann-tapered, so the ramps of integrated positions do not leak into every bin)."""
    d = x.diff(dim=1)
    d = (d - d.mean(1, keepdim=True)) * torch.hann_window(d.shape[1], periodic=False, dtype=d.dtype)[None, :, None]
    return (torch.fft.rfft(d, dim=1).abs() ** 2).mean((0, 2)).numpy()


def by_patch_position(x: torch.Tensor, patch: int) -> list[float]:
    """Mean squared second difference at each position within a token's patch: the second
    difference centred on step t straddles a token boundary when t % patch is 0 or patch − 1."""
    d2 = x.diff(n=2, dim=1).pow(2).mean((0, 2))  # centred on steps 1 .. H-2
    centres = torch.arange(1, x.shape[1] - 1)
    return [float(d2[centres % patch == j].mean()) for j in range(patch)]


def analyse(run: Path) -> dict:
    model, cfg, normalizer, _ = motion.load_model(latest_checkpoint(run))
    model.eval()
    train, test = load_windows(cfg.data, normalizer)
    mode = ModularMeanFlow(cfg.objective).sampling_mode
    held, seen, noise = motion.evaluation_draw(cfg, train, test)  # the run's own evaluation draw
    n = len(held)

    def distance(a: torch.Tensor) -> float:
        return window_distance(a, held, cfg.eval.projections)

    with torch.no_grad():
        samples = {k: sample(model, noise, steps=k, mode=mode) for k in (1, 2, 4)}
    one = samples[1]
    hp_x, hp_e = high_pass(one), high_pass(noise)
    beta = float((hp_x * hp_e).sum() / (hp_e * hp_e).sum())
    explained = float(1 - ((hp_x - beta * hp_e) ** 2).sum() / (hp_x ** 2).sum())
    freqs = np.fft.rfftfreq(cfg.data.horizon - 1, d=time_step(train.store))
    spec_data, spec_one = spectrum(held), spectrum(one)
    # The data's band: the frequencies holding 99.9 % of its step-change power; what samples put
    # above it is noise the data does not have.
    edge = freqs[np.searchsorted(np.cumsum(spec_data) / spec_data.sum(), 0.999)]
    above = freqs > edge
    out = {
        "run": str(run), "variant": cfg.objective.variant, "tangent": cfg.objective.tangent, "compared_windows": n,
        "floor_train_vs_held_out": distance(seen),
        "held_out": {"roughness": roughness(held),
                     "roughness_by_column": held.diff(n=2, dim=1).pow(2).mean((0, 1)).tolist()},
        "roughness_by_column": one.diff(n=2, dim=1).pow(2).mean((0, 1)).tolist(),
        "roughness_by_patch_position": {"patch": cfg.model.patch, "1-step": by_patch_position(one, cfg.model.patch),
                                        "held_out": by_patch_position(held, cfg.model.patch)},
        "samples": {f"{k}-step": {"swd": distance(x), "roughness": roughness(x)} for k, x in samples.items()},
        "leak": {"beta": beta, "high_pass_power_explained": explained},
        "spectrum": {"freq_hz": freqs.round(3).tolist(), "held_out": spec_data.tolist(), "1-step": spec_one.tolist(),
                     "data_band_edge_hz": float(edge),
                     "share_above_edge": {"held_out": float(spec_data[above].sum() / spec_data.sum()),
                                          "1-step": float(spec_one[above].sum() / spec_one.sum())}},
        "savgol": {},
    }
    t0 = time.perf_counter()
    for _ in range(20):
        savgol(one, 7)
    out["savgol_ms"] = {"7, all windows": (time.perf_counter() - t0) / 20 * 1e3, "windows": n}
    for w in WINDOWS:
        smooth, data_smooth = savgol(one, w), savgol(held, w)
        out["savgol"][str(w)] = {"swd": distance(smooth), "roughness": roughness(smooth),
                                 "held_out_filtered_swd": distance(data_smooth),
                                 "held_out_filtered_roughness": roughness(data_smooth)}
    # The leak removed exactly (an oracle: the noise is known at sampling time): x + β·ε undoes a
    # network that cancels ε by a factor 1 − β everywhere.
    oracle = one - beta * noise
    out["leak"]["oracle"] = {"swd": distance(oracle), "roughness": roughness(oracle)}
    reference = window_speeds(test, held)
    out["speed"] = {"held_out": speed_report(test, held, reference), "training": speed_report(test, seen, reference)}
    out["speed"] |= {f"{k}-step": speed_report(test, x, reference) for k, x in samples.items()}
    out["speed"]["1-step SG7"] = speed_report(test, savgol(one, 7), reference)
    return out


SPEED_COLUMNS = ("held_out", "training", "1-step", "2-step", "4-step", "1-step SG7")


def table(results: list[dict]) -> str:
    lines = ["| run | k=1 SWD | k=1 rough | k=2 SWD | k=2 rough | β | HP explained | power above the data's band | "
             + " | ".join(f"SG{w} SWD / rough" for w in WINDOWS) + " | data rough | floor |",
             "|---|" + "---:|" * (9 + len(WINDOWS))]
    speed_rows = ["| run | " + " | ".join(SPEED_COLUMNS) + " |", "|---|" + "---:|" * len(SPEED_COLUMNS)]
    for r in results:
        s = r["samples"]
        cells = [f"{s['1-step']['swd']:.3f}", f"{s['1-step']['roughness']:.4f}", f"{s['2-step']['swd']:.3f}",
                 f"{s['2-step']['roughness']:.4f}", f"{r['leak']['beta']:.3f}",
                 f"{r['leak']['high_pass_power_explained']:.2f}",
                 f"{r['spectrum']['share_above_edge']['1-step']:.0%} (> {r['spectrum']['data_band_edge_hz']:.1f} Hz)"]
        cells += [f"{r['savgol'][str(w)]['swd']:.3f} / {r['savgol'][str(w)]['roughness']:.4f}" for w in WINDOWS]
        cells += [f"{r['held_out']['roughness']:.4f}", f"{r['floor_train_vs_held_out']:.3f}"]
        lines.append(f"| {Path(r['run']).name} | " + " | ".join(cells) + " |")
        speed_rows.append(f"| {Path(r['run']).name} | " + " | ".join(
            f"{r['speed'][c]['mean']:.2f} / {r['speed'][c]['w1_to_held_out']:.2f} / {r['speed'][c]['gap_share']:.0%}"
            for c in SPEED_COLUMNS) + " |")
    return ("\n".join(lines)
            + "\n\nPlanar speed: mean m/s / 1-D Wasserstein to held-out speeds / share between the gaits "
            f"({GAP[0]}-{GAP[1]} m/s)\n\n" + "\n".join(speed_rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, default=None, help="write every measurement as JSON here")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = [analyse(run) for run in args.runs]
    if args.out:
        grid.write_record(args.out, results)
    print(table(results))


if __name__ == "__main__":
    main()
