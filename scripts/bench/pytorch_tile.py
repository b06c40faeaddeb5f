"""PyTorch/TerraTorch reference for `coordinator bench`: the same architecture (Prithvi-EO-2.0-300M-TL
+ UperNet, Sen1Floods11 head) with random weights, timed on one 224×224 tile.

    /path/to/venv/bin/python scripts/bench/pytorch_tile.py --threads 2 --tiles 5

Needs `pip install terratorch` (torch). Prints per-pass times and a last line `median_tile_ms: X`,
like `coordinator bench`, so the two can be run side by side.
"""
import argparse

import torch
from passes import time_passes
from prithvi_reference import build_model


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tiles", type=int, default=5)
    parser.add_argument("--batch", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = build_model()
    x = torch.randn(args.batch, 6, 224, 224)
    location = torch.tensor([[12.49, 41.89]] * args.batch)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{sum(p.numel() for p in model.parameters())} parameters")
    with torch.inference_mode():
        model(x, location_coords=location)  # warm-up
        time_passes(lambda: model(x, location_coords=location), args.tiles, args.batch)


if __name__ == "__main__":
    main()
