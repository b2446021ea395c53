"""How accurate is du/dt on this device? Relative error of each JVP backend against float64 forward mode.

The objective takes du/dt in float32 (DESIGN §2). On CUDA, cuDNN lets float32 convolutions use TF32
(a 10-bit mantissa) unless told otherwise; a finite difference divides that rounding by 2ε. This
measures the error of `fd-central` (at two ε), `exact` and `dual` with TF32 off and on, on the CIFAR U-Net
with live residual branches (the near-zero output convs of the initialisation re-drawn, so the
network is not close to the identity it starts as), in eval mode.

    python benchmarks/jvp_precision.py --device cuda --out jvp_precision.json
    python benchmarks/jvp_precision.py --device cpu --preset tiny --batch 4 --out /tmp/j.json
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
    p.add_argument("--out", required=True)
    return p.parse_args()


def set_tf32(on: bool) -> None:
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = on


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

    def call(dtype, backend, eps=0.0):
        m = model.to(dtype)
        args_ = [a.to(args.device, dtype) for a in (z, r, t, d)]
        with torch.no_grad() if backend != "exact" else torch.enable_grad():
            return JVP_BACKENDS[backend](lambda z_, r_, t_, **tangent: m(z_, r_, t_, **tangent), *args_,
                                         eps=eps).double()

    set_tf32(False)
    ref = call(torch.float64, "exact")
    rows = []
    for tf32 in (False, True):
        set_tf32(tf32)
        cases = [("exact", 0.0), ("dual", 0.0)] + [("fd-central", e) for e in args.eps]
        for backend, eps in cases:
            err = float((call(torch.float32, backend, eps) - ref).norm() / ref.norm())
            rows.append({"backend": backend, "eps": eps, "tf32": tf32, "rel_error": err})
            print(f"{backend:10s} eps={eps:<7g} tf32={str(tf32):5s}  relative error {err:.2e}", flush=True)
    info = {"device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
            "torch": torch.__version__, "preset": args.preset, "batch": args.batch, "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(info, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
