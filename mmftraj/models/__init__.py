"""Networks u_θ(z, r, t, cond): the temporal transformer for trajectories and shared embeddings."""

from .embeddings import TimeEmbedding, fourier_features, sinusoidal_positions
from .transformer import (
    ATTENTION_BACKENDS,
    PRESETS,
    TemporalTransformer,
    TransformerConfig,
    build_transformer,
    count_parameters,
    preset_config,
)

__all__ = [
    "ATTENTION_BACKENDS",
    "PRESETS",
    "TemporalTransformer",
    "TimeEmbedding",
    "TransformerConfig",
    "build_transformer",
    "count_parameters",
    "fourier_features",
    "preset_config",
    "sinusoidal_positions",
]

# Images: the DDPM++-style U-Net.
from .unet import UNET_PRESETS, UNet, UNetConfig, build_unet, unet_config  # noqa: E402

__all__ += ["UNET_PRESETS", "UNet", "UNetConfig", "build_unet", "unet_config"]
