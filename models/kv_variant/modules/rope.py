"""Rotary position embeddings in complex form (as in Meta's LLaMA code).

Pairs of channels are read as complex numbers and multiplied by unit complex numbers
``e^{i * pos * freq}``: a rotation by an angle proportional to the position.
"""

import torch


def precompute_freqs_cis(head_dim: int, max_seq_len: int, theta: float = 10000.0) -> torch.Tensor:
    """Complex64 tensor ``(max_seq_len, head_dim // 2)`` of unit rotations per position."""
    freqs = 1.0 / theta ** (torch.arange(0, head_dim, 2).float() / head_dim)
    angles = torch.outer(torch.arange(max_seq_len).float(), freqs)
    return torch.polar(torch.ones_like(angles), angles)


def apply_rotary_emb(xq: torch.Tensor, xk: torch.Tensor,
                     freqs_cis: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate q ``(b, t, h, d)`` and k ``(b, t, h_kv, d)`` by ``freqs_cis`` ``(t, d/2)``."""
    # Complex math in fp32: view_as_complex needs float32/64 pairs in the last dimension.
    xq_c = torch.view_as_complex(xq.float().reshape(*xq.shape[:-1], -1, 2))
    xk_c = torch.view_as_complex(xk.float().reshape(*xk.shape[:-1], -1, 2))
    rot = freqs_cis[None, :, None, :]  # broadcast over batch and heads
    xq_out = torch.view_as_real(xq_c * rot).flatten(3)
    xk_out = torch.view_as_real(xk_c * rot).flatten(3)
    return xq_out.type_as(xq), xk_out.type_as(xk)
