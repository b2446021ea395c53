"""How accurate is du/dt on this device? Relative error of each JVP backend against float64 forward mode.

The objective takes du/dt in float32 (mmftraj/core/objective.py). On CUDA, cuDNN lets float32 convolutions use TF32
(a 10-bit mantissa) unless told otherwise; a finite difference divides that rounding by 2ε. This
measures the error of `fd-central` (at two ε), `exact` and `dual` with TF32 off and on, on the CIFAR U-Net
with live residual branches (the near-zero output convs of the initialisation re-drawn, so the
network is not close to the identity it starts as), in eval mode.

    python benchmarks/jvp_precision.py --device cuda --out jvp_precision.json
    python benchmarks/jvp_precision.py --device cpu --preset tiny --batch 4 --out /tmp/j.json
    # no GPU: "TF32 on" rounds every convolution's input and weight to TF32's 10-bit mantissa
    python benchmarks/jvp_precision.py --device cpu --batch 2 --simulate-tf32 --out /tmp/j.json
    # what the objective avoids: the same backends under bf16 autocast
    python benchmarks/jvp_precision.py --device cpu --batch 2 --bf16 --out /tmp/j.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmftraj.core.jvp import JVP_BACKENDS  # noqa: E402
from mmftraj.models.unet import UNET_PRESETS, build_unet, unet_config  # noqa: E402


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument("--preset", choices=sorted(UNET_PRESETS), default="ddpmpp")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--eps", type=float, nargs="+", default=[2e-3, 1e-2])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--simulate-tf32", action="store_true",
                   help="emulate TF32 convolutions (round inputs and weights); `exact` is skipped, its "
                        "forward-mode tangents do not pass through the rounding")
    p.add_argument("--bf16", action="store_true",
                   help="also run dual and fd-central under bf16 autocast (the objective never does: this "
                        "measures why)")
    p.add_argument("--out", required=True)
    return p.parse_args()


_conv2d = torch.nn.functional.conv2d


def _round_tf32(a: torch.Tensor) -> torch.Tensor:
    """float32 rounded to nearest at TF32's 10 mantissa bits (13 low bits dropped)."""
    return ((a.view(torch.int32) + 0x1000) & ~0x1FFF).view(torch.float32)


def _conv2d_tf32(x, w, *args, **kwargs):
    if x.dtype != torch.float32:
        return _conv2d(x, w, *args, **kwargs)
    return _conv2d(_round_tf32(x), _round_tf32(w), *args, **kwargs)


def set_tf32(on: bool, simulate: bool = False) -> None:
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = on
    if simulate:
        torch.nn.functional.conv2d = _conv2d_tf32 if on else _conv2d


def main() -> None:
    args = parse()
    torch.manual_seed(args.seed)
    model = build_unet(unet_config(args.preset, dropout=0.0, attention="math")).eval()
    for m in model.modules():  # live residual branches instead of the 1e-5-scaled initial convs
        if isinstance(m, torch.nn.Conv2d):
            m.reset_parameters()
    model.to(args.device)
    s, c = model.cfg.image_size, model.cfg.in_channels
    g = torch.Generator().manual_seed(args.seed)
    z = torch.randn(args.batch, c, s, s, generator=g)
    t = 0.05 + 0.9 * torch.rand(args.batch, generator=g)
    r = t * torch.rand(args.batch, generator=g)
    d = torch.randn(args.batch, c, s, s, generator=g)

    def call(dtype, backend, eps=0.0, bf16=False):
        m = model.to(dtype)
        args_ = [a.to(args.device, dtype) for a in (z, r, t, d)]
        device_type = torch.device(args.device).type
        with torch.no_grad(), torch.autocast(device_type, dtype=torch.bfloat16, enabled=bf16):
            return JVP_BACKENDS[backend](lambda z_, r_, t_, **tangent: m(z_, r_, t_, **tangent), *args_,
                                         eps=eps).double()

    set_tf32(False, args.simulate_tf32)
    ref = call(torch.float64, "exact")
    rows = []
    for tf32 in (False, True):
        set_tf32(tf32, args.simulate_tf32)
        cases = [("exact", 0.0), ("dual", 0.0)] + [("fd-central", e) for e in args.eps]
        if tf32 and args.simulate_tf32:
            cases = cases[1:]
        for backend, eps in cases:
            err = float((call(torch.float32, backend, eps) - ref).norm() / ref.norm())
            rows.append({"backend": backend, "eps": eps, "tf32": tf32, "rel_error": err})
            print(f"{backend:10s} eps={eps:<7g} tf32={str(tf32):5s}  relative error {err:.2e}", flush=True)
    if args.bf16:
        set_tf32(False, args.simulate_tf32)
        for backend, eps in [("dual", 0.0)] + [("fd-central", e) for e in args.eps]:
            err = float((call(torch.float32, backend, eps, bf16=True) - ref).norm() / ref.norm())
            rows.append({"backend": backend, "eps": eps, "tf32": False, "autocast": "bf16", "rel_error": err})
            print(f"{backend:10s} eps={eps:<7g} bf16 autocast  relative error {err:.2e}", flush=True)
    info = {"device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
            "torch": torch.__version__, "preset": args.preset, "batch": args.batch,
            "simulated_tf32": args.simulate_tf32, "bf16": args.bf16, "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(info, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
