"""Configuration of the kv_variant experiment (forked from the template).

Differences from the template: grouped-query attention (``n_kv_heads``), a KV cache sized
by ``max_batch_size`` for inference, complex-valued RoPE, and a character-alphabet BPE with
``vocab_len`` regular tokens (bos and eos come after them, inside the embedding; pad is
outside). ``dropout_rate`` is a class attribute, not a field: it is not in the JSON.
"""

from dataclasses import dataclass


@dataclass
class ModelConfig:
    vocab_len: int = 4096      # regular tokens; the embedding has vocab_len + 2 rows
    dim: int = 128
    n_layers: int = 4
    n_heads: int = 4
    n_kv_heads: int = 2        # grouped-query attention: 2 query heads share one k/v head
    max_seq_len: int = 256
    max_batch_size: int = 1    # sizes the inference KV cache only
    multiple_of: int = 32      # SwiGLU hidden width is rounded up to a multiple of this
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    tokenizer: str = "charbpe"
    device: str = "cuda"       # trained for a GPU box; loaders override it

    # Not a field (no annotation): fixed for the experiment, absent from the JSON.
    dropout_rate = 0.1

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    @property
    def n_embeddings(self) -> int:
        """Rows of the embedding and the head: the regular tokens plus bos and eos."""
        return self.vocab_len + 2

    @property
    def hidden_dim(self) -> int:
        hidden = 2 * 4 * self.dim // 3
        return self.multiple_of * ((hidden + self.multiple_of - 1) // self.multiple_of)


@dataclass
class TrainConfig:
    batch_size: int = 8
    gradient_accumulation_steps: int = 2
    max_steps: int = 600
    learning_rate: float = 3e-3
    min_learning_rate: float = 3e-4
    warmup_steps: int = 30
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    eval_interval: int = 25
    eval_windows: int = 48     # evaluated one at a time: inference allows max_batch_size
    seed: int = 1337
    corpus_seed: int = 1337    # seed of the bundled corpus (sandbox.corpus)
