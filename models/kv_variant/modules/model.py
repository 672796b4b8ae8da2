"""The kv_variant GPT (forked from the template's llama arch).

What changed from the template: grouped-query attention with a KV cache
(``forward(input_ids, cache_len=0, target_ids=None)``), complex-valued RoPE, and an
embedding and output head that are NOT tied, each with ``vocab_len + 2`` rows (the regular
tokens plus bos and eos; the tokenizer's pad id, ``vocab_len + 2``, is outside).

The KV cache is used on the inference path only (no targets): ``max_batch_size`` limits
inference batches, and ``cache_len`` says how many earlier positions the cache already
holds. The training path (with targets) attends within the given full-length sequence,
never touches the cache, applies dropout whatever the train/eval mode, and returns the loss.
"""

import torch
import torch.nn.functional as F
from torch import nn

from modules.attention import Attention
from modules.mlp import FeedForward
from modules.norm import RMSNorm
from modules.rope import precompute_freqs_cis


class TransformerBlock(nn.Module):
    def __init__(self, cfg) -> None:
        super().__init__()
        self.cfg = cfg
        self.attention_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.attention = Attention(cfg)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.feed_forward = FeedForward(cfg)

    def forward(self, x: torch.Tensor, freqs_cis: torch.Tensor, cache_len: int,
                train: bool) -> torch.Tensor:
        p = self.cfg.dropout_rate
        h = self.attention(self.attention_norm(x), freqs_cis, cache_len, use_cache=not train)
        x = x + F.dropout(h, p, training=train)
        return x + F.dropout(self.feed_forward(self.ffn_norm(x)), p, training=train)


class Model(nn.Module):
    def __init__(self, cfg) -> None:
        super().__init__()
        self.cfg = cfg
        self.tok_embeddings = nn.Embedding(cfg.n_embeddings, cfg.dim)
        self.layers = nn.ModuleList(TransformerBlock(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.output = nn.Linear(cfg.dim, cfg.n_embeddings, bias=False)  # untied
        freqs = precompute_freqs_cis(cfg.head_dim, cfg.max_seq_len, cfg.rope_theta)
        self.register_buffer("freqs_cis", freqs, persistent=False)
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                # Residual-stream writers (wo, w2) get GPT-2's depth-scaled init.
                std = 0.02 / (2 * cfg.n_layers) ** 0.5 if name.endswith(("wo.weight", "w2.weight")) else 0.02
                nn.init.normal_(p, mean=0.0, std=std)

    def forward(self, input_ids: torch.Tensor, cache_len: int = 0,
                target_ids: torch.Tensor | None = None):
        """Logits ``(batch, seq, vocab_len + 2)`` and the loss (None without targets)."""
        train = target_ids is not None  # targets mean training: dropout on, no cache
        b, t = input_ids.shape
        if train:
            assert cache_len == 0, "training does not use the KV cache"
            assert t == self.cfg.max_seq_len, f"training needs seq == {self.cfg.max_seq_len}, got {t}"
        else:
            assert b <= self.cfg.max_batch_size, f"batch {b} > max_batch_size {self.cfg.max_batch_size}"
            assert cache_len + t <= self.cfg.max_seq_len, (
                f"cache_len + seq = {cache_len + t} > max_seq_len {self.cfg.max_seq_len}")
        h = F.dropout(self.tok_embeddings(input_ids), self.cfg.dropout_rate, training=train)
        freqs_cis = self.freqs_cis[cache_len:cache_len + t]
        for layer in self.layers:
            h = layer(h, freqs_cis, cache_len, train)
        logits = self.output(self.norm(h))
        if not train:
            return logits, None
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), target_ids.reshape(-1))
        return logits, loss
