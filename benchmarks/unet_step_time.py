"""Seconds per training step of candidate CPU U-Nets (32×32 RGB, batch 64, one thread), for
`mmf` (λ = 1, so its du/dt is taken) and `fm`, each with the objective `cifar --preset small`
trains (its time sampler and share of r < t rows, which sets how many rows take du/dt): how the
preset was sized.

    python benchmarks/unet_step_time.py        # prints one line per (size, variant): the best of 3 steps
"""

import time

import torch

from mmftraj.core import ModularMeanFlow
from mmftraj.models.unet import UNetConfig, build_unet
from mmftraj.run_request import resolve_config

SIZES = [(32, 2), (48, 2), (64, 2), (64, 1)]  # (model_channels, blocks per level); channel_mult [1, 2, 2]

torch.set_num_threads(1)
OBJECTIVES = {v: ModularMeanFlow(resolve_config("cifar", preset="small", objective=v)[1].objective)
              for v in ("mmf", "fm")}
for channels, blocks in SIZES:
    cfg = UNetConfig(image_size=32, in_channels=3, model_channels=channels, channel_mult=[1, 2, 2], num_blocks=blocks,
                     attn_resolutions=[8], dropout=0.1, groups=8, channels_per_head=32)
    model = build_unet(cfg)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    for variant, objective in OBJECTIVES.items():
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        x = torch.randn(64, 3, 32, 32)
        times = []
        for _ in range(4):
            t0 = time.perf_counter()
            loss, _ = objective.loss(model, x, step=10**6)
            opt.zero_grad()
            loss.backward()
            opt.step()
            times.append(time.perf_counter() - t0)
        print(f"{channels} channels, {blocks} block(s): {params:.2f}M {variant} {min(times[1:]):.2f} s/step",
              flush=True)
