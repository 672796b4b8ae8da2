"""Rotary position embeddings (RoPE), real-valued "rotate half" form (llama arch)."""

import torch
from torch import nn


class Rotary(nn.Module):
    """Precomputed cos/sin tables for positions ``0 .. max_seq_len-1``."""

    def __init__(self, head_dim: int, max_seq_len: int, theta: float = 10000.0) -> None:
        super().__init__()
        inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2).float() / head_dim)
        angles = torch.outer(torch.arange(max_seq_len).float(), inv_freq)  # (seq, head_dim/2)
        angles = torch.cat([angles, angles], dim=-1)
        # Non-persistent: derived from the config, so not part of the saved state_dict.
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Rotate ``x`` of shape (batch, heads, seq, head_dim) by its positions."""
        seq = x.shape[-2]
        cos, sin = self.cos[:seq].to(x.dtype), self.sin[:seq].to(x.dtype)
        x1, x2 = x.chunk(2, dim=-1)
        return x * cos + torch.cat([-x2, x1], dim=-1) * sin
