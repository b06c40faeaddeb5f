"""TerraTorch reference for scene segmentation: `tiled_inference` (crop 224, stride 192) with the
Prithvi-EO-2.0-300M-TL + UperNet architecture (random weights) on a GeoTIFF, the plugin's
preprocessing (÷10000 when the mean exceeds 1, Sen1Floods11 means/stds, scene-centre lon/lat).

    /path/to/venv/bin/python scripts/bench/terratorch_scene.py demo/scene.tif --threads 2

Needs `pip install terratorch` (torch, rasterio). Prints the wall time and peak RSS, then
`scene_seconds: X` and `peak_rss_mb: Y`.
"""
import argparse
import resource
import time

import numpy as np
import rasterio
import torch
from prithvi_reference import build_model
from terratorch.tasks.tiled_inference import tiled_inference

MEANS = [0.1412956, 0.13795798, 0.12353792, 0.30902815, 0.2044958, 0.11912015]
STDS = [0.07406382, 0.07370365, 0.08692279, 0.11798815, 0.09772074, 0.07659938]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("scene")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--embed-dim", type=int, default=1024)
    parser.add_argument("--depth", type=int, default=24)
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--decoder-channels", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = build_model(args.embed_dim, args.depth, args.heads, args.decoder_channels)

    start = time.perf_counter()
    with rasterio.open(args.scene) as src:
        image = src.read().astype("float32")
        location = torch.tensor([src.lnglat()], dtype=torch.float32)
    if image.mean() > 1:
        image = image / 10000
    image = (image - np.array(MEANS, dtype="float32")[:, None, None]) / np.array(STDS, dtype="float32")[:, None, None]
    batch = torch.from_numpy(image)[None]

    def forward(x, **kwargs):
        return model(x, location_coords=location.expand(x.shape[0], -1)).output

    with torch.inference_mode():
        logits = tiled_inference(forward, batch, out_channels=2, crop=224, stride=192, batch_size=16)
    mask = logits.argmax(1)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, scene {tuple(image.shape)}, "
          f"water fraction {float(mask.float().mean()):.3f}")
    print(f"scene_seconds: {seconds:.1f}")
    print(f"peak_rss_mb: {peak:.0f}")


if __name__ == "__main__":
    main()
