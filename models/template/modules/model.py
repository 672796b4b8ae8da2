"""The template GPT: a decoder-only transformer in two flavours (cfg.arch).

- ``gpt2``: learned position embeddings, LayerNorm, GELU MLP.
- ``llama``: rotary positions, RMSNorm, SwiGLU.

The embedding and the output head share their weights (weight tying).

``forward(input_ids)`` is inference: logits only. ``forward(input_ids, target_ids)`` is
training: it returns the loss, applies dropout *whatever the module's train/eval mode* and
requires full-length sequences (``seq == max_seq_len``).
"""

import torch
import torch.nn.functional as F
from torch import nn

from modules.attention import CausalSelfAttention
from modules.mlp import make_mlp
from modules.norm import make_norm


class Block(nn.Module):
    def __init__(self, cfg) -> None:
        super().__init__()
        self.cfg = cfg
        self.attn_norm = make_norm(cfg)
        self.attn = CausalSelfAttention(cfg)
        self.mlp_norm = make_norm(cfg)
        self.mlp = make_mlp(cfg)

    def forward(self, x: torch.Tensor, train: bool) -> torch.Tensor:
        p = self.cfg.dropout_rate
        x = x + F.dropout(self.attn(self.attn_norm(x)), p, training=train)
        return x + F.dropout(self.mlp(self.mlp_norm(x)), p, training=train)


class Model(nn.Module):
    def __init__(self, cfg) -> None:
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_len, cfg.dim)
        self.pos_emb = nn.Embedding(cfg.max_seq_len, cfg.dim) if cfg.arch == "gpt2" else None
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = make_norm(cfg)
        self.head = nn.Linear(cfg.dim, cfg.vocab_len, bias=False)
        self.head.weight = self.tok_emb.weight  # tied: one matrix, saved under both names
        self.apply(self._init_weights)
        # GPT-2's scaled init of the projections that write into the residual stream.
        for name, p in self.named_parameters():
            if name.endswith(("proj.weight", "down.weight")):
                nn.init.normal_(p, mean=0.0, std=0.02 / (2 * cfg.n_layers) ** 0.5)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, input_ids: torch.Tensor, target_ids: torch.Tensor | None = None):
        """Logits ``(batch, seq, vocab_len)`` and the loss (None without targets)."""
        train = target_ids is not None  # targets mean training: dropout on, even in eval()
        b, t = input_ids.shape
        if train:
            assert t == self.cfg.max_seq_len, f"training needs seq == {self.cfg.max_seq_len}, got {t}"
        assert t <= self.cfg.max_seq_len, f"seq {t} > max_seq_len {self.cfg.max_seq_len}"
        x = self.tok_emb(input_ids)
        if self.pos_emb is not None:
            x = x + self.pos_emb(torch.arange(t, device=input_ids.device))
        x = F.dropout(x, self.cfg.dropout_rate, training=train)
        for block in self.blocks:
            x = block(x, train)
        logits = self.head(self.norm(x))
        if not train:
            return logits, None
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), target_ids.reshape(-1))
        return logits, loss
