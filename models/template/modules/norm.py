"""Normalisation layers: LayerNorm (gpt2 arch) and RMSNorm (llama arch)."""

import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm(nn.Module):
    """LayerNorm without bias, as in nanoGPT (the bias buys nothing at this size)."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.weight.shape, self.weight, None, self.eps)


class RMSNorm(nn.Module):
    """Root-mean-square norm: rescales without centring (LLaMA)."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Normalise in fp32 so that half-precision inputs do not lose the small variances.
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return xf.type_as(x) * self.weight


def make_norm(cfg) -> nn.Module:
    """The norm layer of ``cfg.arch``."""
    return RMSNorm(cfg.dim, cfg.norm_eps) if cfg.arch == "llama" else LayerNorm(cfg.dim, cfg.norm_eps)
