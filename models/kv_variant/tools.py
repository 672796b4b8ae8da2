"""Helpers for the scripts: loading a trained run and sampling with the KV cache."""

import json
from pathlib import Path

import torch
from config import ModelConfig
from modules.model import Model


def load_run(run_dir: Path, device: str = "cpu") -> Model:
    """Rebuild a run's model from model_config.json and model.pth (the contract's way)."""
    cfg = ModelConfig(**json.loads((run_dir / "model_config.json").read_text()))
    cfg.device = device  # the saved device ("cuda") may not exist here
    model = Model(cfg).to(device)
    state = torch.load(run_dir / "model.pth", map_location=device, weights_only=True)
    model.load_state_dict(state)
    return model.eval()


@torch.no_grad()
def generate(model: Model, ids: list[int], max_new_tokens: int, temperature: float = 0.0,
             top_k: int | None = None, stop_id: int | None = None) -> list[int]:
    """Continue ``ids`` (one sequence) with the KV cache; greedy when ``temperature`` is 0.

    The prompt is run once; then each step feeds only the newest token at position
    ``cache_len``. Generation stops at max_seq_len (the cache is full). Returns new ids.
    """
    device = next(model.parameters()).device
    ids = ids[-model.cfg.max_seq_len:]
    logits, _ = model(torch.tensor([ids], dtype=torch.long, device=device))
    cache_len, new = len(ids), []
    for _ in range(max_new_tokens):
        last = logits[0, -1]
        if temperature <= 0:
            next_id = int(last.argmax())
        else:
            last = last / temperature
            if top_k is not None:
                kth = torch.topk(last, min(top_k, last.numel())).values[-1]
                last[last < kth] = -float("inf")
            next_id = int(torch.multinomial(torch.softmax(last, -1), 1))
        if next_id == stop_id or cache_len >= model.cfg.max_seq_len:
            break
        new.append(next_id)
        x = torch.tensor([[next_id]], dtype=torch.long, device=device)
        logits, _ = model(x, cache_len)
        cache_len += 1
    return new
