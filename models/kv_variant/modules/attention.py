"""Grouped-query attention with a KV cache for incremental decoding.

Two paths, chosen by the caller (the model):

- inference (``use_cache=True``): k and v of this call are written to the cache at
  positions ``[cache_len, cache_len + seq)`` and the queries attend over
  ``[0, cache_len + seq)`` with a causal mask. ``cache_len=0`` with a whole sequence is an
  ordinary causal forward. The cache holds ``max_batch_size`` sequences.
- training (``use_cache=False``): attention within the given sequence only; the cache is
  neither read nor written, so training batches may be larger than ``max_batch_size``.
"""

import torch
import torch.nn.functional as F
from torch import nn

from modules.rope import apply_rotary_emb


class Attention(nn.Module):
    def __init__(self, cfg) -> None:
        super().__init__()
        assert cfg.n_heads % cfg.n_kv_heads == 0, "n_heads must be a multiple of n_kv_heads"
        self.n_heads, self.n_kv_heads, self.head_dim = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        self.n_rep = cfg.n_heads // cfg.n_kv_heads
        self.wq = nn.Linear(cfg.dim, cfg.n_heads * cfg.head_dim, bias=False)
        self.wk = nn.Linear(cfg.dim, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.wv = nn.Linear(cfg.dim, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.wo = nn.Linear(cfg.n_heads * cfg.head_dim, cfg.dim, bias=False)
        # Non-persistent: the cache is scratch space, not part of the saved state_dict.
        shape = (cfg.max_batch_size, cfg.max_seq_len, cfg.n_kv_heads, cfg.head_dim)
        self.register_buffer("cache_k", torch.zeros(shape), persistent=False)
        self.register_buffer("cache_v", torch.zeros(shape), persistent=False)

    def forward(self, x: torch.Tensor, freqs_cis: torch.Tensor, cache_len: int,
                use_cache: bool) -> torch.Tensor:
        b, t, _ = x.shape
        q = self.wq(x).view(b, t, self.n_heads, self.head_dim)
        k = self.wk(x).view(b, t, self.n_kv_heads, self.head_dim)
        v = self.wv(x).view(b, t, self.n_kv_heads, self.head_dim)
        q, k = apply_rotary_emb(q, k, freqs_cis)

        if use_cache:
            # Store detached copies (the cache must not grow an autograd graph across
            # calls); read the past from the cache and the present from k, v themselves.
            self.cache_k[:b, cache_len:cache_len + t] = k.detach()
            self.cache_v[:b, cache_len:cache_len + t] = v.detach()
            k = torch.cat([self.cache_k[:b, :cache_len].to(k.dtype), k], dim=1)
            v = torch.cat([self.cache_v[:b, :cache_len].to(v.dtype), v], dim=1)

        # Each k/v head serves n_rep query heads.
        k = k.repeat_interleave(self.n_rep, dim=2)
        v = v.repeat_interleave(self.n_rep, dim=2)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (b, h, seq, d)
        if cache_len == 0:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            # Query i sits at absolute position cache_len + i: it sees keys 0..cache_len+i.
            mask = torch.ones(t, cache_len + t, dtype=torch.bool, device=x.device)
            mask = mask.tril(diagonal=cache_len)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.wo(y.transpose(1, 2).reshape(b, t, -1))
