"""Break a keyword model on purpose, to watch robustness contracts fail (`proactiv check`, `pytest --proactiv`).

    python scripts/break_model.py models/kws-dscnn models/kws-broken [--spread 0.3] [--seed 0]

Adds seeded Gaussian noise of ``spread`` times each weight tensor's standard deviation to every weight with more
than one axis (biases and batch-norm statistics are kept), and writes the model to OUT/model.pt.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="a model folder (or model.pt) made by `proactiv kws train`")
    parser.add_argument("out", type=Path, help="folder to write the broken model.pt into")
    parser.add_argument("--spread", type=float, default=0.3, help="noise, in units of each tensor's sd")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    source = args.model / "model.pt" if args.model.is_dir() else args.model
    saved = torch.load(source, map_location="cpu", weights_only=True)
    if not isinstance(saved, dict) or "state_dict" not in saved:
        raise SystemExit(f"{source}: not a model made by `proactiv kws train` (no state_dict)")
    gen = torch.Generator().manual_seed(args.seed)
    saved["state_dict"] = {
        name: w + args.spread * w.std() * torch.randn(w.shape, generator=gen) if w.dim() > 1 else w
        for name, w in saved["state_dict"].items()
    }
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(saved, args.out / "model.pt")
    print(f"wrote {args.out / 'model.pt'} (weights + {args.spread:g} sd of noise, seed {args.seed})")


if __name__ == "__main__":
    main()
