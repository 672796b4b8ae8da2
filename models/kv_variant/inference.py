"""Sample from a trained run.

    python inference.py --run gqa_atto --prompt "Once upon a time" [--temperature 0.8]
"""

import argparse
import os
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent
os.chdir(ROOT)  # the tokenizer opens its ranks relative to the experiment root

from tokenizers.charbpe.tokenizer import get_tokenizer  # noqa: E402
from tools import generate, load_run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True)
    parser.add_argument("--prompt", default="Once upon a time")
    parser.add_argument("--max-new-tokens", type=int, default=120)
    parser.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    parser.add_argument("--top-k", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    model = load_run(ROOT / "trained" / args.run)
    tok = get_tokenizer(model.cfg.vocab_len)
    new = generate(model, tok.encode(args.prompt), args.max_new_tokens, args.temperature,
                   args.top_k, stop_id=tok.eos_id)
    print(args.prompt + tok.decode(new))


if __name__ == "__main__":
    main()
