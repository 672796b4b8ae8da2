"""Configuration of the template experiment: the model and its training.

``ModelConfig`` is saved next to every run as ``model_config.json`` and rebuilt with
``ModelConfig(**json.load(f))``. Only dataclass fields are saved: ``dropout_rate`` is a
plain class attribute (no annotation) and derived sizes are properties, so neither ends up
in the JSON.
"""

from dataclasses import dataclass


@dataclass
class ModelConfig:
    vocab_len: int = 1024      # ids in all, bos/eos/pad included (the last three)
    dim: int = 128
    n_layers: int = 4
    n_heads: int = 4
    max_seq_len: int = 256
    arch: str = "gpt2"         # "gpt2": learned positions, LayerNorm, GELU MLP
                               # "llama": RoPE, RMSNorm, SwiGLU
    tokenizer: str = "bpe"     # folder under tokenizers/
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    device: str = "mps"        # written on a Mac; loaders override it

    # Not a field (no annotation): fixed for the experiment, absent from the JSON.
    dropout_rate = 0.1

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    @property
    def hidden_dim(self) -> int:
        """MLP width: 4*dim for GELU; 2/3 of that for SwiGLU (same parameter count)."""
        if self.arch == "llama":
            return 8 * ((2 * 4 * self.dim // 3 + 7) // 8)
        return 4 * self.dim


@dataclass
class TrainConfig:
    batch_size: int = 16
    gradient_accumulation_steps: int = 1
    max_steps: int = 1200
    learning_rate: float = 3e-3
    min_learning_rate: float = 3e-4
    warmup_steps: int = 30
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    eval_interval: int = 50
    eval_batches: int = 8
    seed: int = 1337
    corpus_seed: int = 1337    # seed of the bundled corpus (sandbox.corpus)
