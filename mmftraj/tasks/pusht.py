"""pusht: a one-step action-chunk policy learned from Diffusion Policy's 206 human demonstrations.

`mmftraj train --task pusht` trains a temporal transformer over chunks of `data.horizon` actions
conditioned on the last `data.obs_steps` observations (nine block keypoints + the agent's x, y),
with any variant of the objective; `mmftraj eval --task pusht --checkpoint RUN` scores it in
gym-pusht on Diffusion Policy's 50 test starts (env seeds 100000–100049): each episode scores its
best reward (coverage / 0.95, clipped to 1), the score is the mean over episodes.

Checkpoint choice never looks at the test starts: every `eval.every` training steps the EMA
weights play the selection starts (seeds `eval.select_seed`…, drawn by the same recipe) and the
test starts; the weights best on the selection starts are kept in `<run>/selected/`, and the test
score of those weights, of the last ones and the mean over the last `eval.last` evaluations
(Diffusion Policy's "mean of the last 10 checkpoints") are reported.
"""

from __future__ import annotations

import csv
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import checkpoint_step, latest_checkpoint, load_task_model, save_checkpoint
from ..config import apply_overrides, check_eval_overrides, to_dict
from ..core import ModularMeanFlow, ObjectiveConfig, sample
from ..data import Normalizer
from ..data.pusht import PushTDemos, load_demos, split_episodes
from ..envs.pusht import MAX_STEPS, OBS_DIM, PushTBatch, dp_start, observe, require_gym_pusht
from ..errors import UserError
from ..evaluation.frames import save_gif, save_strip
from ..io import atomic_write_text
from ..models.transformer import TransformerConfig, build_transformer, check_task_sizes, count_parameters
from ..planning.chunks import ChunkPolicy, chunk_latency_ms, run_chunked
from ..progress import progress_bar
from ..training import TrainConfig, Trainer
from . import Task

ACT_DIM = 2
PRESETS = ("gpu",)


@dataclass
class DataConfig:
    path: str | None = None  # None: the shipped demonstrations; else an .npz of that form or a DP zarr store
    train_episodes: int = 90  # Diffusion Policy's headline setting
    val_episodes: int = 4  # held out of training (never trained on, whatever train_episodes is)
    subset_seed: int | None = None  # which episodes; None: the training seed, so intervals include the data drawn
    obs_steps: int = 2
    horizon: int = 16  # actions per predicted chunk
    # [lo, hi) degrees: training episodes whose block starts at an angle in this band are left out
    # (an out-of-distribution split; score it with eval.angle set to the same band)
    hold_out_angle: list[float] = field(default_factory=list)


@dataclass
class ModelConfig:
    width: int = 128
    depth: int = 4
    heads: int = 4
    patch: int = 1
    mlp_ratio: float = 4.0
    dropout: float = 0.0


@dataclass
class EvalConfig:
    action_steps: int = 8  # executed of each chunk before the next is drawn
    steps: int = 1  # network evaluations per chunk
    test_seed: int = 100000  # Diffusion Policy's test starts: seeds test_seed … test_seed + test_starts - 1
    test_starts: int = 50
    # [lo, hi) degrees: test starts are the first test_starts seeds from test_seed whose block angle
    # lies in this band (empty: every seed, Diffusion Policy's starts)
    angle: list[float] = field(default_factory=list)
    select_seed: int = 0  # starts that choose the checkpoint (never reported as the score)
    select_starts: int = 50
    every: int = 1000  # evaluate during training every N steps (0: only at the end)
    last: int = 10  # report the mean test score over this many last evaluations
    seed: int = 0  # the policy's noise
    shown: int = 4  # rollouts drawn in the GIF and strip written by `mmftraj eval`


@dataclass
class Config:
    # The CPU preset. c = 1e-3 per learned entry of the 16 × 2 chunk (the other tasks' weighting);
    # λ warms over the first half. Batch 64 and 20000 steps: chosen on training seed 100 with the
    # test starts moved to seeds 300000+ (docs/pusht.md); one step of batch 256 cost 4x one of 64
    # while the score at 12000 steps of batch 64 was still rising.
    objective: ObjectiveConfig = field(default_factory=lambda: ObjectiveConfig(lambda_warmup=10000, adaptive_c=0.032))
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(steps=20000, batch_size=64, lr=5e-4, lr_schedule="cosine", warmup_steps=200,
                                            weight_decay=1e-6, ema_decay=0.999, log_every=50, ckpt_every=2000))
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


def default_config(preset: str | None = None) -> Config:
    return Config()


# -- data ----------------------------------------------------------------------------------------
@dataclass
class ChunkData:
    """Every (observation history, action chunk) pair of some episodes, as index tables.

    Row i pairs observations `obs[obs_idx[i]]` (k steps ending at step s, the first repeated
    before the episode starts) with actions `act[act_idx[i]]` (H steps from s, the last repeated
    after it ends), for every step s that leaves a whole executed part inside the episode."""

    obs: torch.Tensor  # (N, 20) normalized
    act: torch.Tensor  # (N, 2) normalized
    obs_idx: torch.Tensor  # (M, k)
    act_idx: torch.Tensor  # (M, H)

    def __len__(self) -> int:
        return len(self.obs_idx)

    def batch(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(action chunks (B, H, 2), flattened histories (B, k·20))."""
        return self.act[self.act_idx[rows]], self.obs[self.obs_idx[rows]].reshape(len(rows), -1)


def chunk_tables(demos: PushTDemos, episodes: np.ndarray, obs_steps: int, horizon: int, action_steps: int):
    """Index tables (obs_idx (M, k), act_idx (M, H)) into the demos' rows for `episodes`."""
    obs_rows = [np.zeros((0, obs_steps), dtype=np.int64)]
    act_rows = [np.zeros((0, horizon), dtype=np.int64)]
    for k in episodes:
        a, b = int(demos.starts[k]), int(demos.episode_ends[k])
        steps = np.arange(a, max(a + 1, b - action_steps + 1))
        obs_rows.append(np.clip(steps[:, None] + np.arange(1 - obs_steps, 1), a, b - 1))
        act_rows.append(np.clip(steps[:, None] + np.arange(horizon), a, b - 1))
    return np.concatenate(obs_rows), np.concatenate(act_rows)


def in_band(theta, band: list[float]) -> np.ndarray:
    """Whether angles (radians) lie in the band [lo, hi) degrees, taken modulo 360."""
    deg = np.mod(np.degrees(theta), 360.0)
    lo, hi = np.mod(band[0], 360.0), np.mod(band[1], 360.0)
    return (deg >= lo) & (deg < hi) if lo <= hi else (deg >= lo) | (deg < hi)


def episode_split(cfg: Config, demos: PushTDemos) -> tuple[np.ndarray, np.ndarray]:
    """(training, validation) episodes; with data.hold_out_angle, episodes starting in the band
    are removed before the draw, so the sizes count eligible episodes only."""
    d = cfg.data
    seed = cfg.train.seed if d.subset_seed is None else d.subset_seed
    eligible = np.arange(demos.episodes)
    if d.hold_out_angle:
        eligible = eligible[~in_band(demos.state[demos.starts, 4], d.hold_out_angle)]
    if d.hold_out_angle and d.train_episodes + d.val_episodes > len(eligible):
        raise UserError(f"data.hold_out_angle {d.hold_out_angle} leaves {len(eligible)} of {demos.episodes} episodes, "
                        f"fewer than data.train_episodes {d.train_episodes} + data.val_episodes {d.val_episodes}")
    train, val = split_episodes(len(eligible), d.train_episodes, d.val_episodes, seed)
    return eligible[train], eligible[val]


def test_seeds(e: EvalConfig) -> list[int]:
    """The env seeds of the test starts: consecutive from test_seed, or the first test_starts of
    them whose block angle lies in eval.angle."""
    if not e.angle:
        return list(range(e.test_seed, e.test_seed + e.test_starts))
    seeds, seed = [], e.test_seed
    while len(seeds) < e.test_starts:
        if in_band(dp_start(seed)[4], e.angle):
            seeds.append(seed)
        seed += 1
    return seeds


def make_chunks(cfg: Config, demos: PushTDemos, episodes: np.ndarray, obs_norm: Normalizer,
                act_norm: Normalizer) -> ChunkData:
    obs_idx, act_idx = chunk_tables(demos, episodes, cfg.data.obs_steps, cfg.data.horizon, cfg.eval.action_steps)
    return ChunkData(torch.as_tensor(obs_norm.normalize(observe(demos.state)), dtype=torch.float32),
                     torch.as_tensor(act_norm.normalize(demos.action), dtype=torch.float32),
                     torch.as_tensor(obs_idx), torch.as_tensor(act_idx))


def fit_normalizers(demos: PushTDemos, episodes: np.ndarray) -> tuple[Normalizer, Normalizer]:
    """Per-feature [min, max] → [-1, 1] of the training episodes' observations and actions."""
    rows = np.concatenate([np.arange(demos.starts[k], demos.episode_ends[k]) for k in episodes])
    return Normalizer.fit(observe(demos.state[rows]), "limits"), Normalizer.fit(demos.action[rows], "limits")


# -- model ---------------------------------------------------------------------------------------
def build_model(cfg: Config):
    m, d = cfg.model, cfg.data
    check_task_sizes(d.horizon, m.width, m.depth, m.heads, m.patch)
    tcfg = TransformerConfig(horizon=d.horizon, dim_in=ACT_DIM, width=m.width, depth=m.depth, heads=m.heads,
                             patch=m.patch, cond_dim=d.obs_steps * OBS_DIM, mlp_ratio=m.mlp_ratio,
                             dropout=m.dropout, attention="fast")
    return build_transformer(tcfg)


def check_config(cfg: Config, preset: str | None = None, selecting: bool = True) -> None:
    """Values that would fail late (after training) or silently, refused before any work.
    `selecting`: the run chooses a checkpoint on the selection starts (training, not `eval`)."""
    d, e = cfg.data, cfg.eval
    rules = [("data.obs_steps", d.obs_steps >= 1, "at least 1"), ("data.horizon", d.horizon >= 1, "at least 1"),
             ("eval.action_steps", 1 <= e.action_steps <= d.horizon, f"1 to data.horizon ({d.horizon})"),
             ("eval.steps", e.steps >= 1, "at least 1"), ("eval.test_starts", e.test_starts >= 1, "at least 1"),
             ("eval.select_starts", e.select_starts >= 0, "0 or more"), ("eval.every", e.every >= 0, "0 or more"),
             ("eval.last", e.last >= 1, "at least 1"), ("eval.shown", e.shown >= 0, "0 or more"),
             ("eval.test_seed", e.test_seed >= 0, "0 or more"), ("eval.select_seed", e.select_seed >= 0, "0 or more"),
             ("eval.seed", e.seed >= 0, "0 or more"),
             ("data.subset_seed", d.subset_seed is None or d.subset_seed >= 0,
              "0 or more (or null: the training seed)"),
             ("data.path", d.path is None or str(d.path).strip() != "", "a file or folder (or null: the shipped data)")]
    for name, band in (("data.hold_out_angle", d.hold_out_angle), ("eval.angle", e.angle)):
        if band and (len(band) != 2 or not all(np.isfinite(band)) or np.mod(band[0], 360) == np.mod(band[1], 360)):
            rules.append((name, False, "empty or two angles [lo, hi) in degrees, different modulo 360"))
    bad = [f"{name} must be {want}, got {_get(cfg, name)}" for name, ok, want in rules if not ok]
    if bad:
        raise UserError("; ".join(bad))
    if selecting and e.select_starts:
        shared = set(range(e.select_seed, e.select_seed + e.select_starts)) & set(test_seeds(e))
        if shared:
            raise UserError(f"the selection starts (eval.select_seed {e.select_seed}, {e.select_starts} seeds) share "
                            f"{len(shared)} seed(s) with the test starts, e.g. {min(shared)}: the checkpoint would be "
                            "chosen on the reported episodes")


def _get(cfg, dotted: str):
    section, key = dotted.split(".")
    return getattr(getattr(cfg, section), key)


# -- evaluation ----------------------------------------------------------------------------------
def play(net, obs_norm: Normalizer, act_norm: Normalizer, cfg: Config, mode: str, seeds, render: int = 0,
         progress: bool = False):
    """Run the policy from Diffusion Policy's start of every seed; (scores, successes, envs). The
    starts run as one batch in lockstep, so with `progress` the batch's env step is shown against
    the episode length (the time left): a bar on a terminal, plain lines in a pipe or a log."""
    d, e = cfg.data, cfg.eval
    policy = ChunkPolicy(net, obs_norm, act_norm, d.horizon, ACT_DIM, e.steps, mode, seed=e.seed)
    envs = PushTBatch(len(seeds), render=render)
    try:
        with progress_bar(f"rollouts pusht ({len(seeds)} starts) at step", MAX_STEPS, progress) as advance:
            shown = 0

            def on_chunk(_: int) -> None:
                nonlocal shown
                step = MAX_STEPS if envs.done.all() else int(envs.steps.max())
                if step > shown:
                    advance(step - shown)
                    shown = step

            run_chunked(envs, policy, np.stack([dp_start(s) for s in seeds]), observe, d.obs_steps, e.action_steps,
                        on_chunk=on_chunk)
    finally:
        envs.close()
    return envs.best.copy(), envs.success.copy(), envs


def summary(scores: np.ndarray, successes: np.ndarray) -> dict:
    """Diffusion Policy's score (mean over episodes of each episode's best reward), its standard
    error over episodes, and the share of episodes that reached 95 % coverage."""
    scores = np.asarray(scores, dtype=np.float64)
    se = float(scores.std(ddof=1) / np.sqrt(len(scores))) if len(scores) > 1 else 0.0
    return {"score": float(scores.mean()), "score_se": se, "success": float(np.mean(successes)),
            "episodes": int(len(scores))}


def validation_mse(net, data: ChunkData, mode: str, steps: int, seed: int = 0) -> float:
    """Mean squared error (normalized units) of sampled chunks against the held-out demonstrations'."""
    if len(data) == 0:
        return float("nan")
    g = torch.Generator().manual_seed(seed)
    rows = torch.arange(len(data))
    act, cond = data.batch(rows)
    with torch.no_grad():
        pred = sample(net.eval(), torch.randn(act.shape, generator=g), steps, mode, cond=cond)
    return float(((pred - act) ** 2).mean())


EVAL_FIELDS = ("step", "select_score", "select_success", "test_score", "test_success", "val_mse")


class TrainingEvaluator:
    """The Trainer callback: every `eval.every` steps score the EMA weights on the selection and
    test starts, append a row to `<run>/evals.csv`, and keep the weights best on the selection
    starts in `<run>/selected/`."""

    def __init__(self, cfg: Config, run_dir: Path, obs_norm, act_norm, val: ChunkData, mode: str, meta: dict,
                 say=print):
        self.cfg, self.run_dir, self.obs_norm, self.act_norm = cfg, Path(run_dir), obs_norm, act_norm
        self.val, self.mode, self.meta, self.say = val, mode, meta, say
        self.path = self.run_dir / "evals.csv"
        self.rows: list[dict] = []

    def resume(self, step: int) -> None:
        """Keep the rows of evaluations at or before `step` (a resumed run repeats the rest), and drop
        chosen weights saved after it: they belong to steps the resumed run trains again."""
        if self.path.is_file():
            with self.path.open(newline="") as fh:
                self.rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(fh)]
            self.rows = [r for r in self.rows if r["step"] <= step]
            self._write()
        chosen = latest_checkpoint(self.run_dir / "selected")
        if chosen is not None and checkpoint_step(chosen) > step:
            shutil.rmtree(self.run_dir / "selected")

    def __call__(self, trainer) -> None:
        every = self.cfg.eval.every
        if every and trainer.step % every == 0 and trainer.step < self.cfg.train.steps:
            self.evaluate(trainer)

    def evaluate(self, trainer) -> dict:
        e = self.cfg.eval
        net = trainer.ema
        row = {"step": float(trainer.step)}
        if e.select_starts:
            s, ok, _ = play(net, self.obs_norm, self.act_norm, self.cfg, self.mode,
                            range(e.select_seed, e.select_seed + e.select_starts))
            row.update(select_score=float(s.mean()), select_success=float(ok.mean()))
        s, ok, _ = play(net, self.obs_norm, self.act_norm, self.cfg, self.mode, test_seeds(e))
        row.update(test_score=float(s.mean()), test_success=float(ok.mean()),
                   val_mse=validation_mse(net, self.val, self.mode, e.steps, e.seed))
        best = max((r.get("select_score", -1.0) for r in self.rows), default=-1.0)
        self.rows.append(row)
        self._write()
        if e.select_starts and row["select_score"] > best:
            save_checkpoint(self.run_dir / "selected", trainer.step, net, meta=self.meta, keep=1)
        self.say(f"eval at step {trainer.step}: selection starts {row.get('select_score', float('nan')):.3f}, "
                 f"test starts {row['test_score']:.3f} (success {row['test_success']:.0%})")
        return row

    def _write(self) -> None:
        lines = [",".join(EVAL_FIELDS)]
        lines += [",".join(f"{r.get(k, float('nan')):.6g}" for k in EVAL_FIELDS) for r in self.rows]
        atomic_write_text(self.path, "\n".join(lines) + "\n")

    def report(self) -> dict:
        """The chosen evaluation (best on the selection starts), the last one and the mean of the last few."""
        if not self.rows:
            return {}
        last = self.rows[-self.cfg.eval.last :]
        out = {"evaluations": len(self.rows), "last_step": int(self.rows[-1]["step"]),
               "last_test_score": self.rows[-1]["test_score"],
               "mean_last_test_score": float(np.mean([r["test_score"] for r in last])), "mean_last_n": len(last)}
        if self.cfg.eval.select_starts:
            chosen = max(self.rows, key=lambda r: r["select_score"])
            out.update(selected_step=int(chosen["step"]), selected_select_score=chosen["select_score"],
                       selected_test_score=chosen["test_score"], selected_test_success=chosen["test_success"])
        return out


def train(cfg: Config, run_dir: Path, resume: bool = False, progress: bool = True) -> dict:
    check_config(cfg)
    require_gym_pusht()  # before training, not after it
    torch.manual_seed(cfg.train.seed)
    demos = load_demos(cfg.data.path)
    train_eps, val_eps = episode_split(cfg, demos)
    obs_norm, act_norm = fit_normalizers(demos, train_eps)
    data = make_chunks(cfg, demos, train_eps, obs_norm, act_norm)
    val = make_chunks(cfg, demos, val_eps, obs_norm, act_norm)
    net = build_model(cfg)
    objective = ModularMeanFlow(cfg.objective)
    bs = cfg.train.batch_size

    def batch_fn(generator: torch.Generator, step: int) -> dict:
        act, cond = data.batch(torch.randint(len(data), (bs,), generator=generator))
        return {"x": act, "cond": {"cond": cond}}

    meta = {"task": "pusht", "config": to_dict(cfg), "obs_normalizer": obs_norm.state_dict(),
            "act_normalizer": act_norm.state_dict(), "train_episodes": train_eps.tolist(),
            "val_episodes": val_eps.tolist()}
    trainer = Trainer(net, objective, batch_fn, cfg.train, run_dir, meta=meta, progress=progress)
    say = print if progress else (lambda *a, **k: None)
    evaluator = TrainingEvaluator(cfg, run_dir, obs_norm, act_norm, val, objective.sampling_mode, meta, say)
    if resume:
        latest = latest_checkpoint(run_dir)
        evaluator.resume(checkpoint_step(latest) if latest is not None else 0)
    fit = trainer.fit(resume=resume, callback=evaluator)
    if not evaluator.rows or evaluator.rows[-1]["step"] < trainer.step:
        evaluator.evaluate(trainer)
    held = int(in_band(demos.state[demos.starts, 4], cfg.data.hold_out_angle).sum()) if cfg.data.hold_out_angle else 0
    return {"objective": cfg.objective.variant, "train_episodes": len(train_eps), "held_out_episodes": held,
            "test_starts": f"{cfg.eval.test_starts} from seed {cfg.eval.test_seed}", "chunks": len(data),
            "parameters": count_parameters(net), **fit, **evaluator.report()}



# -- checkpoints and `mmftraj eval` ---------------------------------------------------------------
def load_policy(checkpoint: str | Path):
    """(net, cfg, obs normalizer, action normalizer) from a pusht checkpoint."""
    net, cfg, meta = load_task_model(checkpoint, "pusht", Config, build_model)
    try:
        return net, cfg, Normalizer.from_state_dict(meta["obs_normalizer"]), Normalizer.from_state_dict(
            meta["act_normalizer"])
    except (KeyError, TypeError):
        raise UserError(f"checkpoint {checkpoint} has no Push-T normalizers in its metadata") from None


def evaluate(checkpoint: str | Path, steps: list[int] | None = None, episodes: int | None = None, seed: int = 0,
             out: Path | None = None, overrides=(), progress: bool = True) -> dict:
    """Score a checkpoint on the test starts for each number of network evaluations per chunk."""
    net, cfg, obs_norm, act_norm = load_policy(checkpoint)
    check_eval_overrides(overrides)
    cfg = apply_overrides(cfg, list(overrides))
    if episodes is not None:
        if episodes < 1:
            raise UserError(f"--episodes must be at least 1, got {episodes}")
        cfg.eval.test_starts = episodes
    if not any(o.replace(" ", "").startswith("eval.seed=") for o in overrides):
        cfg.eval.seed = seed
    check_config(cfg, selecting=False)
    require_gym_pusht()
    mode = ModularMeanFlow(cfg.objective).sampling_mode
    e = cfg.eval
    results = {"objective": cfg.objective.variant, "sampling": mode, "action_steps": e.action_steps,
               "starts": f"{e.test_starts} seeds from {e.test_seed}"
               + (f" with the block at {e.angle[0]:g}-{e.angle[1]:g} degrees" if e.angle else "")}
    if any(k < 1 for k in steps or []):
        raise UserError(f"--steps must be at least 1, got {min(steps)}")
    for k in steps or [e.steps]:
        cfg.eval.steps = int(k)
        seeds = test_seeds(e)
        scores, successes, envs = play(net, obs_norm, act_norm, cfg, mode, seeds, render=e.shown if out else 0,
                                       progress=progress)
        policy = ChunkPolicy(net, obs_norm, act_norm, cfg.data.horizon, ACT_DIM, k, mode)
        row = {**summary(scores, successes), "chunk_ms": chunk_latency_ms(policy, cfg.data.obs_steps, OBS_DIM)}
        if out is not None and envs.frames:
            stem = Path(out) / (f"rollouts-{k}step" if len(steps or [e.steps]) > 1 else "rollouts")
            labels = [f"seed {s}: {v:.2f}" for s, v in zip(seeds, scores, strict=False)][: len(envs.frames)]
            save_gif(envs.frames, stem.with_suffix(".gif"))
            save_strip(envs.frames, labels, stem.with_suffix(".png"))
            row["per_episode"] = [round(float(s), 4) for s in scores]
        results[f"{k}-step"] = row
    return results


TASK = Task("pusht", Config, default_config, train, PRESETS, evaluate=evaluate, check=check_config)
