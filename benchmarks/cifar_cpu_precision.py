"""Seconds per forward and backward of the default `cifar` U-Net (the 55.8M-parameter GPU recipe)
on the CPU in float32 and under bfloat16 autocast: why the recipe's float32 du/dt forwards dominate
a CPU step (docs/usage.md).

    python benchmarks/cifar_cpu_precision.py --batch 8 --threads 1

The second of two calls of each (the first warms the kernels); train mode, t = 0.5, r = 0.
"""

from __future__ import annotations

import argparse
import time

import torch

from mmftraj.models.unet import build_unet
from mmftraj.run_request import resolve_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = build_unet(resolve_config("cifar", None, device="cpu")[1].model).train()
    b = args.batch
    x, t, r = torch.randn(b, 3, 32, 32), torch.full((b,), 0.5), torch.zeros(b)

    def run(bf16: bool, grad: bool) -> tuple[float, float]:
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16), torch.set_grad_enabled(grad):
            y = model(x, r, t)
        t1 = time.perf_counter()
        if grad:
            y.float().square().mean().backward()
            model.zero_grad(set_to_none=True)
        return t1 - t0, time.perf_counter() - t1

    rows = {}
    for bf16 in (False, True):
        for grad in (False, True):
            run(bf16, grad)
            rows[bf16, grad] = run(bf16, grad)
            print(f"{'bfloat16' if bf16 else 'float32 '} {'with grad' if grad else 'no grad  '}: forward "
                  f"{rows[bf16, grad][0]:.2f} s" + (f", backward {rows[bf16, grad][1]:.2f} s" if grad else ""),
                  flush=True)
    print(f"float32 / bfloat16, forward without grad: {rows[False, False][0] / rows[True, False][0]:.1f}x "
          f"(batch {b}, {args.threads} thread(s))")


if __name__ == "__main__":
    main()
