"""The training loop: exact resume after a kill, checkpoints, metrics, and data parallelism."""

import csv
import os
import signal
import socket

import pytest
import torch
import torch.multiprocessing as mp

from mmftraj.checkpoint import list_checkpoints, load_checkpoint
from mmftraj.core import ModularMeanFlow, ObjectiveConfig
from mmftraj.errors import UserError
from mmftraj.models.mlp import MLPConfig, TimeMLP
from mmftraj.tasks.toy2d import sample_data
from mmftraj.training import TrainConfig, Trainer


def _trainer(run_dir, steps=40, variant="mmf", seed=0, init_seed=None):
    torch.manual_seed(seed if init_seed is None else init_seed)
    model = TimeMLP(MLPConfig(hidden=32, depth=2, time_dim=16, freq_dim=8))
    objective = ModularMeanFlow(ObjectiveConfig(variant=variant, lambda_warmup=20))
    cfg = TrainConfig(steps=steps, batch_size=64, lr=3e-3, warmup_steps=5, log_every=5, ckpt_every=10, seed=seed,
                      ema_decay=0.9)

    def batch_fn(generator, step):
        return {"x": sample_data("eight_gaussians", cfg.batch_size, generator)}

    return Trainer(model, objective, batch_fn, cfg, run_dir, meta={"task": "test"}, progress=False)


class Killed(Exception):
    pass


def test_resume_after_kill_matches_uninterrupted_run(tmp_path):
    full = _trainer(tmp_path / "full")
    full.fit()

    def kill_at_27(trainer):
        if trainer.step == 27:
            raise Killed

    interrupted = _trainer(tmp_path / "resumed")
    with pytest.raises(Killed):
        interrupted.fit(callback=kill_at_27)
    assert [p.name for p in list_checkpoints(tmp_path / "resumed")] == ["step_00000010", "step_00000020"]
    # a different init: everything must come from the checkpoint
    resumed = _trainer(tmp_path / "resumed", init_seed=123)
    assert resumed.step == 0
    resumed.fit(resume=True)
    for a, b in zip(full.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(a, b)
    for a, b in zip(full.ema.parameters(), resumed.ema.parameters(), strict=True):
        assert torch.equal(a, b)
    with open(tmp_path / "resumed" / "metrics.csv") as fh:
        steps = [int(row["step"]) for row in csv.DictReader(fh)]
    assert steps == list(range(5, 41, 5))  # rows past the checkpoint were dropped, none repeated


def test_checkpoint_holds_model_ema_optimizer_and_meta(tmp_path):
    trainer = _trainer(tmp_path, steps=10)
    trainer.fit()
    tensors, meta = load_checkpoint(tmp_path)
    assert meta["step"] == 10 and meta["task"] == "test"
    assert any(k.startswith("ema/") for k in tensors) and any(k.startswith("optim/") for k in tensors)
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".")]  # no temp leftovers
    assert torch.equal(tensors["model/inp.weight"], trainer.model.inp.weight.detach())


def test_ema_and_lambda_are_logged(tmp_path):
    trainer = _trainer(tmp_path, steps=30)
    trainer.fit()
    with open(tmp_path / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    lambdas = [float(r["lambda"]) for r in rows]
    assert lambdas[0] < 0.5 and lambdas[-1] == 1.0  # the curriculum follows the global step
    assert not torch.equal(trainer.ema.inp.weight, trainer.model.inp.weight)


def test_piped_output_gets_plain_progress_lines(tmp_path, capsys):
    trainer = _trainer(tmp_path, steps=10)
    trainer.progress = True  # pytest captures stdout: not a terminal, so no live bar
    trainer.fit()
    out = capsys.readouterr().out
    assert "train 10/10  loss " in out  # the last step always gets a line


def test_resuming_a_finished_run_keeps_its_final_loss(tmp_path, capsys):
    first = _trainer(tmp_path, steps=20).fit()
    checkpoints = list_checkpoints(tmp_path)
    again = _trainer(tmp_path, steps=10)
    again.progress = True
    result = again.fit(resume=True)
    assert "already at step 20 (steps: 10); nothing to train" in capsys.readouterr().out
    assert result["steps"] == 20 and result["final_loss"] == pytest.approx(first["final_loss"])
    assert list_checkpoints(tmp_path) == checkpoints  # nothing rewritten


def test_plain_lines_do_not_wait_for_log_every(tmp_path, capsys, monkeypatch):
    import mmftraj.progress as progress

    monkeypatch.setattr(progress, "PLAIN_PROGRESS_EVERY_S", 0.0)
    trainer = _trainer(tmp_path, steps=4)
    trainer.cfg.log_every = 100
    trainer.progress = True
    trainer.fit()
    out = capsys.readouterr().out
    assert "train 1/4  " in out and "it/s" in out.split("train 1/4  ")[1].splitlines()[0]
    assert "━" not in out  # no rich bar in piped output, only lines


def test_ctrl_c_saves_a_checkpoint_to_resume_from(tmp_path, capsys):
    def interrupt_at_7(trainer):
        if trainer.step == 7:
            raise KeyboardInterrupt

    trainer = _trainer(tmp_path, steps=40)
    trainer.progress = True
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(callback=interrupt_at_7)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000007"]
    assert "interrupted at step 7: saved" in capsys.readouterr().out
    resumed = _trainer(tmp_path, steps=8)
    resumed.progress = True
    resumed.fit(resume=True)
    assert "resuming from step 7" in capsys.readouterr().out and resumed.step == 8


# -- data parallelism ------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank, world, port, out_dir):
    os.environ.update(WORLD_SIZE=str(world), RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    import torch.distributed as dist

    trainer = _trainer(out_dir if rank == 0 else None, steps=6, variant="mmf-full", seed=rank)  # λ = 1: grads via du/dt
    first = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.fit()
    torch.save({"first": first, "final": {n: p.detach().clone() for n, p in trainer.model.named_parameters()}},
               out_dir / f"rank{rank}.pt")
    dist.destroy_process_group()


def test_two_process_data_parallel_keeps_parameters_identical(tmp_path):
    world = 2
    mp.spawn(_ddp_worker, args=(world, _free_port(), tmp_path), nprocs=world, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(world))
    for name in r0["final"]:
        assert torch.equal(r0["first"][name], r1["first"][name]), "rank 0's init must be broadcast"
        assert torch.equal(r0["final"][name], r1["final"][name]), f"{name} diverged across ranks"
    assert any(not torch.equal(r0["first"][n], r0["final"][n]) for n in r0["final"])
    # The ranks drew different data, so identical parameters mean gradients really were averaged:
    single = _trainer(None, steps=6, variant="mmf-full", seed=0)
    single.fit()
    assert any(not torch.equal(p, r0["final"][n]) for n, p in single.model.named_parameters())


def test_compile_model_compiles_blocks_in_place_or_wraps_the_whole_model(monkeypatch):
    """Which torch entry point compile_model uses, recorded through the public API (no private
    attributes): Module.compile in place for each listed block, torch.compile for the rest."""
    from mmftraj.models.unet import build_unet, unet_config
    from mmftraj.runtime import compile_model

    compiled, wrapped = [], []
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, **kw: compiled.append((self, kw)))
    monkeypatch.setattr(torch, "compile", lambda model, **kw: wrapped.append((model, kw)) or ("wrapped", model))
    unet = build_unet(unet_config("tiny", image_size=8))
    keys = set(unet.state_dict())
    assert compile_model(unet, "blocks") is unet  # in place: checkpoints keep their parameter names
    assert set(unet.state_dict()) == keys
    units = list(unet.compile_units())
    assert [m for m, _ in compiled] == units and all(kw == {"dynamic": False} for _, kw in compiled)
    assert not wrapped
    whole = build_unet(unet_config("tiny", image_size=8))
    assert compile_model(whole, "model") == ("wrapped", whole) and wrapped[-1][1] == {"dynamic": False}
    mlp = TimeMLP(MLPConfig(dim=2, hidden=16, depth=2))  # lists no blocks: compiled whole
    assert compile_model(mlp, "blocks") == ("wrapped", mlp) and len(compiled) == len(units)


def test_compile_is_skipped_on_the_cpu_unless_asked_for(tmp_path, capsys):
    """`train.compile: true` (the GPU recipes) does not compile on the CPU, where a large network's
    first step would take many minutes; it says so, and `train.compile_cpu` compiles anyway."""
    model = TimeMLP(MLPConfig(hidden=8, depth=1, time_dim=8, freq_dim=4))
    objective = ModularMeanFlow(ObjectiveConfig(variant="fm"))
    batch = lambda g, step: {"x": torch.randn(8, 2, generator=g)}  # noqa: E731
    cfg = TrainConfig(steps=1, batch_size=8, compile=True, device="cpu")
    trainer = Trainer(model, objective, batch, cfg, tmp_path / "a", progress=True)
    assert trainer.forward_model is trainer.model and not trainer.compiled
    trainer.fit()
    assert "torch.compile is skipped on the CPU" in capsys.readouterr().out
    cfg = TrainConfig(steps=1, batch_size=8, compile=True, compile_cpu=True, device="cpu")
    trainer = Trainer(model, objective, batch, cfg, tmp_path / "b", progress=False)
    assert trainer.compiled and trainer.forward_model is not trainer.model


def test_a_diverging_run_stops_with_one_line_and_keeps_its_good_checkpoints(tmp_path):
    """A loss that turns NaN at step 7: the run stops there with a UserError naming the step, no
    checkpoint holds NaN, and the newest is the last good one (issue 20): step 4, whose weights
    gave step 5 a healthy loss; step 6's gave step 7 the NaN, so it is renamed aside."""
    import math

    from mmftraj.checkpoint import latest_checkpoint, load_checkpoint

    class Blowup(ModularMeanFlow):
        def loss(self, model, x, step=0, **kw):
            loss, stats = super().loss(model, x, step=step, **kw)
            return (loss * math.nan if step >= 6 else loss), stats

    model = TimeMLP(MLPConfig(dim=2, hidden=16, depth=2))
    cfg = TrainConfig(steps=20, batch_size=16, ckpt_every=2, log_every=1, threads=1)
    trainer = Trainer(model, Blowup(ObjectiveConfig(variant="fm")), lambda g, s: {"x": torch.randn(16, 2, generator=g)},
                      cfg, tmp_path, progress=False)
    with pytest.raises(UserError, match="training diverged at step 7: the loss is not finite") as err:
        trainer.fit()
    assert ("the last good checkpoint is" in str(err.value)
            and "renamed aside to diverged_step_00000006" in str(err.value))
    assert latest_checkpoint(tmp_path).name == "step_00000004"
    assert (tmp_path / "checkpoints" / "diverged_step_00000006").is_dir()
    tensors, _ = load_checkpoint(tmp_path)  # finite: loading checks every tensor
    assert all(bool(torch.isfinite(t).all()) for t in tensors.values() if t.is_floating_point())


def test_a_checkpoint_with_non_finite_tensors_is_refused_on_load(tmp_path):
    """As one saved from a diverged run before checkpoints carried a checksum (none to check here)."""
    import json

    from safetensors.torch import load_file, save_file

    from mmftraj.checkpoint import load_checkpoint, save_checkpoint

    model = TimeMLP(MLPConfig(dim=2, hidden=16, depth=2))
    ckpt = save_checkpoint(tmp_path, 1, model)
    tensors = load_file(str(ckpt / "tensors.safetensors"))
    first = next(iter(tensors))
    tensors[first] = torch.full_like(tensors[first], float("nan"))
    save_file(tensors, str(ckpt / "tensors.safetensors"))
    meta = json.loads((ckpt / "meta.json").read_text())
    del meta["tensors_sha256"], meta["meta_sha256"]
    (ckpt / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match="non-finite values"):
        load_checkpoint(ckpt)


def _tensors(run_dir, step):
    tensors, meta = load_checkpoint(run_dir / "checkpoints" / f"step_{step:08d}")
    return tensors, meta


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_mid_step_saves_the_whole_step_bit_for_bit(tmp_path, signum):
    """The signal arrives inside a step (here: during the loss); the run finishes that step,
    saves, and raises Interrupted with the shell's exit code. The checkpoint equals, tensor for
    tensor, an uninterrupted run's checkpoint at the same step (issue 20)."""
    from mmftraj.interrupts import Interrupted

    trainer = _trainer(tmp_path / "cut", steps=40)
    loss = trainer.objective.loss
    before = signal.getsignal(signum)  # SIG_IGN when the test run itself was started in the background

    def loss_that_gets_a_signal(*args, **kwargs):
        if trainer.step == 12:
            os.kill(os.getpid(), signum)  # delivered now, in the middle of step 13
        return loss(*args, **kwargs)

    trainer.objective.loss = loss_that_gets_a_signal
    with pytest.raises(Interrupted) as stop:
        trainer.fit()
    assert stop.value.code == 128 + signum and trainer.step == 13
    whole = _trainer(tmp_path / "whole", steps=40)
    whole.cfg.ckpt_every = 13
    whole.cfg.steps = 13
    whole.fit()
    cut, meta = _tensors(tmp_path / "cut", 13)
    ref, _ = _tensors(tmp_path / "whole", 13)
    assert meta["step"] == 13 and cut.keys() == ref.keys()
    assert all(torch.equal(cut[k], ref[k]) for k in ref)
    assert signal.getsignal(signum) == before  # the handler in place before the run is restored


def test_a_second_signal_aborts_without_saving(tmp_path):
    trainer = _trainer(tmp_path, steps=40)
    loss = trainer.objective.loss

    def twice(*args, **kwargs):
        if trainer.step == 12:
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)
        return loss(*args, **kwargs)

    trainer.objective.loss = twice
    with pytest.raises(KeyboardInterrupt) as stop:
        trainer.fit()
    assert stop.value.code == 143  # two SIGTERMs: the shell's code for SIGTERM, not Ctrl-C's 130
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000010"]  # the periodic one only


def test_a_step_past_the_signal_grace_period_aborts_keeping_the_last_checkpoint(tmp_path, capsys):
    """A step that outlasts train.signal_grace_s after SIGTERM is abandoned with one line, exit
    code 143, and the periodic checkpoint before it left as it was (a cluster kills soon after)."""
    import time

    from mmftraj.interrupts import Aborted

    trainer = _trainer(tmp_path, steps=40)
    trainer.cfg.signal_grace_s = 0.5
    trainer.progress = True
    batches = trainer.batch_fn

    def slow_step_after_a_signal(generator, step):
        if step == 12:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(30)  # a first compiled step: far longer than the grace period
        return batches(generator, step)

    trainer.batch_fn = slow_step_after_a_signal
    began = time.perf_counter()
    with pytest.raises(Aborted) as stop:
        trainer.fit()
    assert time.perf_counter() - began < 10 and stop.value.code == 143
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000010"]
    said = [line for line in capsys.readouterr().out.splitlines() if "aborted" in line]
    assert len(said) == 1 and "did not finish within 0.5 s of the signal" in said[0]
    assert "step_00000010" in said[0]
    assert signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, None) and signal.getitimer(signal.ITIMER_REAL)[0] == 0


NODE_SCRIPT = """
import os, sys, torch
sys.path.insert(0, {tests!r})
from test_training import _trainer
import torch.distributed as dist
from pathlib import Path
torch.set_num_threads(1)
rank = int(os.environ["RANK"])
out = Path({out!r})
trainer = _trainer(out if rank == 0 else None, steps=6, variant="mmf-full", seed=rank)
trainer.fit()
torch.save({{n: p.detach().clone() for n, p in trainer.model.named_parameters()}}, out / f"node{{rank}}.pt")
dist.destroy_process_group()
"""


def test_two_torchrun_nodes_on_localhost_keep_parameters_identical(tmp_path):
    """The path a cluster user takes: two `torchrun` node processes (c10d rendezvous, one process
    each) train together and end with identical parameters."""
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "node.py"
    script.write_text(NODE_SCRIPT.format(tests=str(Path(__file__).parent), out=str(tmp_path)))
    port = _free_port()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1",
           "--rdzv_backend", "c10d", "--rdzv_endpoint", f"127.0.0.1:{port}", "--rdzv_id", "mmftraj-test",
           "--max_restarts", "0", str(script)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    nodes = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    outputs = [n.communicate(timeout=240)[0] for n in nodes]
    assert all(n.returncode == 0 for n in nodes), "\n".join(o[-2000:] for o in outputs)
    a, b = (torch.load(tmp_path / f"node{r}.pt", weights_only=True) for r in range(2))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_half_written_checkpoint_folder_is_removed_by_the_next_save(tmp_path):
    from mmftraj.checkpoint import save_checkpoint

    model = TimeMLP(MLPConfig(dim=2, hidden=16, depth=2))
    stale = tmp_path / "checkpoints" / ".step_00000003.abc123"
    stale.mkdir(parents=True)
    (stale / "tensors.safetensors").write_bytes(b"half")  # what kill -9 mid-write leaves
    save_checkpoint(tmp_path, 4, model)
    assert not stale.exists() and [p.name for p in list_checkpoints(tmp_path)] == ["step_00000004"]


def test_auto_threads_leave_the_cores_other_jobs_use(monkeypatch):
    """train.threads=0 takes the cores the last minute's load leaves free, at least one (issue 20)."""
    from mmftraj import runtime

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(4)), raising=False)
    for load, expected in ((0.0, 4), (1.2, 3), (3.6, 1), (9.0, 1)):
        monkeypatch.setattr(os, "getloadavg", lambda load=load: (load, load, load))
        assert runtime.auto_threads() == expected
    trainer = _trainer(None, steps=1)  # threads 0 in the config: the trainer resolves it and records it
    assert trainer.threads >= 1 and trainer.fit()["threads"] == trainer.threads


# -- loss health: good checkpoints, suspicious ends, resumed scale, every rank alike --------------------
class ScaledMSE(ModularMeanFlow):
    """The real objective, with its reported raw MSE multiplied by `factor(step)` (weights untouched)."""

    def __init__(self, cfg, factor):
        super().__init__(cfg)
        self.factor = factor

    def loss(self, model, x, step=0, **kw):
        loss, stats = super().loss(model, x, step=step, **kw)
        return loss, dict(stats, mse=stats["mse"] * self.factor(step))


def _scaled_trainer(run_dir, factor, steps=12, **cfg):
    torch.manual_seed(0)
    model = TimeMLP(MLPConfig(dim=2, hidden=16, depth=2))
    cfg = TrainConfig(**{"steps": steps, "batch_size": 16, "ckpt_every": 2, "keep_checkpoints": 1, "threads": 1,
                         "log_every": 1, **cfg})
    return Trainer(model, ScaledMSE(ObjectiveConfig(variant="fm"), factor),
                   lambda g, s: {"x": torch.randn(16, 2, generator=g)}, cfg, run_dir, progress=False)


def test_suspicious_losses_keep_the_last_good_checkpoint_and_end_with_a_warning(tmp_path, capsys):
    """From step 6 on the loss is 50x its median: no later checkpoint is confirmed good, so rotation
    (keep 1) keeps step 4 beside the newest, and the run ends with one warning line naming it."""
    from mmftraj.checkpoint import last_good_checkpoint

    result = _scaled_trainer(tmp_path, lambda step: 50.0 if step >= 5 else 1.0).fit()
    good = tmp_path / "checkpoints" / "step_00000004"
    assert last_good_checkpoint(tmp_path) == good and result["last_good_checkpoint"] == str(good)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000004", "step_00000012"]
    warning = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert (len(warning) == 1 and warning[0].startswith("warning: since step 6 the loss has been up to")
            and str(good) in warning[0])
    healthy = _scaled_trainer(tmp_path / "ok", lambda step: 1.0).fit()  # a healthy run: nothing of the kind
    assert "last_good_checkpoint" not in healthy and not capsys.readouterr().err
    # the final checkpoint has no next step to confirm it, so keep 1 still spares the confirmed step 10
    assert [p.name for p in list_checkpoints(tmp_path / "ok")] == ["step_00000010", "step_00000012"]


def test_a_resumed_run_knows_its_loss_scale_from_the_checkpoint(tmp_path):
    """The median is saved with each checkpoint, so the first resumed step can already be judged;
    the checkpoint whose weights gave that loss is set aside, the older good one stays."""
    _scaled_trainer(tmp_path, lambda step: 1.0, steps=8).fit()
    _, meta = load_checkpoint(tmp_path)
    assert meta["loss_median"] > 0
    resumed = _scaled_trainer(tmp_path, lambda step: 1e4, steps=12)
    with pytest.raises(UserError, match=r"diverged at step 9: the loss \(.*\) is .* times its running median") as err:
        resumed.fit(resume=True)
    assert f"the last good checkpoint is {tmp_path / 'checkpoints' / 'step_00000006'}" in str(err.value)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000006"]
    assert (tmp_path / "checkpoints" / "diverged_step_00000008").is_dir()


def test_weights_that_are_not_finite_are_never_saved(tmp_path):
    trainer = _scaled_trainer(tmp_path, lambda step: 1.0, steps=4)
    trainer.fit()
    trainer.train_step()  # step 5's healthy loss confirms checkpoint 4
    with torch.no_grad():
        trainer.model.inp.weight[0, 0] = float("inf")  # as an optimizer step that overflowed would leave them
    with pytest.raises(UserError, match="diverged at step 5: the weights are not finite"):
        trainer.save()
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000002", "step_00000004"]
    assert not list((tmp_path / "checkpoints").glob("*5"))  # nor set aside: never written


def _ddp_health_worker(rank, world, port, out_dir):
    """Only rank 1's loss explodes; both ranks must stop at the same step (none left waiting)."""
    os.environ.update(WORLD_SIZE=str(world), RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    import torch.distributed as dist

    trainer = _scaled_trainer(out_dir if rank == 0 else None, lambda step: 1e6 if rank == 1 and step >= 5 else 1.0)
    try:
        trainer.fit()
        outcome = "finished"
    except UserError as exc:
        outcome = str(exc)
    (out_dir / f"rank{rank}.txt").write_text(outcome)
    dist.barrier()  # neither rank tears the group down while the other still talks to it (gloo aborts)
    dist.destroy_process_group()


def test_every_rank_takes_the_same_divergence_decision(tmp_path):
    mp.spawn(_ddp_health_worker, args=(2, _free_port(), tmp_path), nprocs=2, join=True)
    r0, r1 = ((tmp_path / f"rank{r}.txt").read_text() for r in range(2))
    assert r0.startswith("training diverged at step 6: the loss") and "last good checkpoint is" in r0
    assert r1.startswith("training diverged at step 6: the loss") and "rank 1" in r1


def test_the_trainer_never_writes_through_symbolic_links(tmp_path):
    """Without the run folder's checks (a library caller): a linked metrics.csv is refused on
    resume, a linked checkpoints folder on save; neither target changes."""
    import shutil

    from mmftraj.checkpoint import save_checkpoint

    _trainer(tmp_path / "run", steps=10).fit()
    outside = tmp_path / "metrics-elsewhere.csv"
    shutil.move(tmp_path / "run" / "metrics.csv", outside)
    (tmp_path / "run" / "metrics.csv").symlink_to(outside)
    before = outside.read_text()
    with pytest.raises(UserError, match="metrics.csv is a symbolic link"):
        _trainer(tmp_path / "run", steps=20).fit(resume=True)
    assert outside.read_text() == before
    (tmp_path / "mine").mkdir()
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / "checkpoints").symlink_to(tmp_path / "mine")
    with pytest.raises(UserError, match="checkpoints is a symbolic link"):
        save_checkpoint(tmp_path / "linked", 1, torch.nn.Linear(2, 2))
    assert not list((tmp_path / "mine").iterdir())


def test_a_damaged_optimizer_state_is_one_line_on_resume(tmp_path):
    """meta.json's optimizer param_groups overwritten in a checkpoint without meta.json's own checksum:
    --resume ends with one line and exit 2, not torch's KeyError."""
    import json
    import subprocess
    import sys

    args = [sys.executable, "-m", "mmftraj", "train", "--task", "toy2d", "--name", "p", "--runs-dir", str(tmp_path),
            "--set", "train.threads=1", "--set", "train.batch_size=32"]
    assert subprocess.run([*args, "--steps", "4"], capture_output=True).returncode == 0
    meta_path = list_checkpoints(tmp_path / "toy2d" / "p")[-1] / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["optimizer"]["param_groups"] = [{"lr": "x"}]
    meta.pop("meta_sha256", None)  # as a checkpoint from before meta.json carried its checksum
    meta_path.write_text(json.dumps(meta))
    out = subprocess.run([*args, "--steps", "6", "--resume"], capture_output=True, text=True)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 2 and len(lines) == 1 and "optimizer state does not fit" in lines[0], out.stderr


def test_resume_refuses_a_preset_that_contradicts_the_run(tmp_path):
    """--preset two_moons on a checkerboard run would be silently ignored by resume; it is refused
    with one line naming the field, and the run's own preset (or none) still resumes."""
    import subprocess
    import sys

    args = [sys.executable, "-m", "mmftraj", "train", "--task", "toy2d", "--name", "q", "--runs-dir", str(tmp_path),
            "--set", "train.threads=1", "--set", "train.batch_size=32"]
    assert subprocess.run([*args, "--preset", "checkerboard", "--steps", "3"], capture_output=True).returncode == 0
    out = subprocess.run([*args, "--preset", "two_moons", "--steps", "5", "--resume"], capture_output=True, text=True)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 2 and len(lines) == 1 and "data.distribution ('checkerboard' in the run" in lines[0]
    again = subprocess.run([*args, "--preset", "checkerboard", "--steps", "5", "--resume"], capture_output=True)
    assert again.returncode == 0
