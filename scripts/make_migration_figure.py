#!/usr/bin/env python3
"""docs/vllm-vs-overlap.png: the demo scene segmented in the default mode and with --tiling vllm.

Needs rasterio and Pillow (not CI). Uses Tests/Fixtures/parity/tiny_tl, a random-weight model with
balanced classes: its masks mean nothing, but the tiling's own marks (the plugin's seams on its
512-pixel grid, blended tiles without them) are what the figure shows.

  python scripts/make_migration_figure.py [--coordinator .build/release/coordinator]
"""
import argparse
import pathlib
import subprocess
import tempfile

import numpy as np
import rasterio
from PIL import Image, ImageDraw

REPO = pathlib.Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--coordinator", default=str(REPO / ".build" / "release" / "coordinator"))
    args = parser.parse_args()
    model = REPO / "Tests" / "Fixtures" / "parity" / "tiny_tl"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        run = lambda *a: subprocess.run([args.coordinator, *map(str, a)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        run("create-scene", tmp / "scene.tif", "--width", 1000, "--height", 700)
        run("segment", model, tmp / "scene.tif", tmp / "overlap.tif", "--quiet")
        run("segment", model, tmp / "scene.tif", tmp / "vllm.tif", "--tiling", "vllm", "--quiet")
        with rasterio.open(tmp / "scene.tif") as src:
            rgb = src.read([3, 2, 1]).astype(np.float32)
        rgb = np.clip(rgb / 3000.0 * 255, 0, 255).astype(np.uint8).transpose(1, 2, 0)
        masks = [rasterio.open(tmp / name).read(1) for name in ("overlap.tif", "vllm.tif")]
    panels = [Image.fromarray(rgb)] + [Image.fromarray(np.where(m == 255, 40, 235).astype(np.uint8)).convert("RGB") for m in masks]
    titles = ["scene (RGB)", "default: overlapping tiles, blended", "--tiling vllm: the plugin's 512 crops"]
    w, h = panels[0].size
    figure = Image.new("RGB", (3 * w + 40, h + 30), "white")
    draw = ImageDraw.Draw(figure)
    for i, (panel, title) in enumerate(zip(panels, titles)):
        figure.paste(panel, (i * (w + 20), 30))
        draw.text((i * (w + 20) + 4, 8), title, fill="black")
    figure = figure.resize((figure.width // 2, figure.height // 2), Image.LANCZOS)
    figure.quantize(colors=64).save(REPO / "docs" / "vllm-vs-overlap.png", optimize=True)


if __name__ == "__main__":
    main()
