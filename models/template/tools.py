"""Helpers for the scripts: loading a trained run and sampling from it."""

import json
from pathlib import Path

import torch
from config import ModelConfig
from modules.model import Model


def load_run(run_dir: Path, device: str = "cpu") -> Model:
    """Rebuild a run's model from model_config.json and model.pth (the contract's way)."""
    cfg = ModelConfig(**json.loads((run_dir / "model_config.json").read_text()))
    cfg.device = device  # the saved device ("mps") may not exist here
    model = Model(cfg).to(device)
    state = torch.load(run_dir / "model.pth", map_location=device, weights_only=True)
    model.load_state_dict(state)
    return model.eval()


@torch.no_grad()
def generate(model: Model, ids: list[int], max_new_tokens: int, temperature: float = 0.0,
             top_k: int | None = None, stop_id: int | None = None) -> list[int]:
    """Continue ``ids``; greedy when ``temperature`` is 0. Returns the new ids only."""
    device = next(model.parameters()).device
    seq = torch.tensor([ids], dtype=torch.long, device=device)
    new: list[int] = []
    for _ in range(max_new_tokens):
        logits, _ = model(seq[:, -model.cfg.max_seq_len:])  # no KV cache: re-run the window
        logits = logits[0, -1]
        if temperature <= 0:
            next_id = int(logits.argmax())
        else:
            logits = logits / temperature
            if top_k is not None:
                kth = torch.topk(logits, min(top_k, logits.numel())).values[-1]
                logits[logits < kth] = -float("inf")
            next_id = int(torch.multinomial(torch.softmax(logits, -1), 1))
        if next_id == stop_id:
            break
        new.append(next_id)
        seq = torch.cat([seq, seq.new_tensor([[next_id]])], dim=1)
    return new
