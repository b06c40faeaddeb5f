#!/usr/bin/env python
"""Train the demo model: a toy Prithvi-EO-2.0 (TL) + UperNet of a few hundred thousand parameters
that finds water in the project's synthetic scenes.

It is NOT a flood model: it has only seen `coordinator create-scene --landscape varied` scenes
(their land covers, rivers, lakes and clouds), so it says nothing about real imagery. It exists so
that `make demo` shows a mask that means something and so that tests can score tiling, scale and
blending against a ground truth (issue 15).

What it does
------------
1. `coordinator create-model OUT --embed-dim 64 --depth 4 --heads 2 --decoder-channels 32`
   writes OUT/config.json, the same vLLM/TerraTorch form and Sen1Floods11 data settings as the
   published model (bands, means/stds, constant_scale 1e-4, 512 -> 448 resize) -- so the config
   the Swift side reads is the one this script trains against.
2. `coordinator create-scene --landscape varied --truth` writes training scenes (seeds 101...,
   some clouded); seeds below 100 are never trained on (tests and the demo use them).
3. TerraTorch's EncoderDecoderFactory builds the model from config.json's model_args; it is
   trained with the Sen1Floods11 recipe's data settings: random 512 crops (flips, 90 degree
   turns), DN x 1e-4, normalised with the config's means/stds, resized to 448 (bilinear; labels
   nearest), invalid pixels set to the band mean (0 after normalising, as `segment` fills them)
   and ignored in the loss (ignore_index -1, as are clouds), the scene centre as location_coords.
4. OUT/model.safetensors gets the trained weights (encoder.pos_embed left out: it is a fixed
   sin-cos table the loader computes for the input size), OUT/README.md a model card.

How to run (from the repository root, after `swift build -c release`)
---------------------------------------------------------------------
    python scripts/train_demo_model.py            # -> models/demo-water, about 10 minutes on 2 cores

Requires torch, terratorch (1.2.x), rasterio, safetensors, numpy. Deterministic for a given
torch build (seeded, one process); CI never runs it: the weights are committed.
"""

import argparse
import copy
import importlib.metadata
import json
import math
import pathlib
import subprocess
import tempfile
import time
import warnings

import numpy as np
import rasterio
import rasterio.warp
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from terratorch.models import EncoderDecoderFactory

warnings.filterwarnings("ignore", message=".*scale_modules is deprecated.*")

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
ARCH = ["--embed-dim", "64", "--depth", "4", "--heads", "2", "--decoder-channels", "32", "--seed", "15"]
CROP, RESIZED = 512, 448


def run(*args):
    subprocess.run([str(a) for a in args], check=True, stdout=subprocess.DEVNULL)


def make_scenes(coordinator, folder, count, size):
    scenes = []
    for k in range(count):
        seed = 101 + k
        scene, truth = folder / f"train-{seed}.tif", folder / f"train-{seed}-truth.tif"
        clouds = "0.25" if k % 3 == 2 else "0"
        corner = "0.3" if k % 2 else "0"
        run(coordinator, "create-scene", scene, "--landscape", "varied", "--seed", seed, "--width", size, "--height", size,
            "--clouds", clouds, "--nodata-corner", corner, "--truth", truth)
        with rasterio.open(scene) as src, rasterio.open(truth) as lab:
            dn = src.read().astype(np.float32)
            valid = np.all(dn != src.nodata, axis=0)
            centre = src.xy(src.height / 2 - 0.5, src.width / 2 - 0.5)
            lon, lat = rasterio.warp.transform(src.crs, "EPSG:4326", [centre[0]], [centre[1]])
            scenes.append({"dn": dn, "valid": valid, "truth": lab.read(1), "lonlat": (lon[0], lat[0])})
    return scenes


def batch(scenes, size, means, stds, rng):
    xs, ys, locs = [], [], []
    for _ in range(size):
        s = scenes[rng.integers(len(scenes))]
        h, w = s["truth"].shape
        r, c = rng.integers(0, h - CROP + 1), rng.integers(0, w - CROP + 1)
        x = s["dn"][:, r:r + CROP, c:c + CROP] * 1e-4
        x = (x - means[:, None, None]) / stds[:, None, None]
        valid = s["valid"][r:r + CROP, c:c + CROP]
        x = np.where(valid[None], x, 0.0)
        t = s["truth"][r:r + CROP, c:c + CROP].astype(np.int64) - 1  # water 1, land 0, unknown -1
        t[~valid] = -1
        k = rng.integers(4)
        x, t = np.rot90(x, k, axes=(1, 2)), np.rot90(t, k)
        if rng.integers(2):
            x, t = x[:, :, ::-1], t[:, ::-1]
        xs.append(np.ascontiguousarray(x, dtype=np.float32))
        ys.append(np.ascontiguousarray(t))
        locs.append(s["lonlat"])
    x = F.interpolate(torch.from_numpy(np.stack(xs)), size=(RESIZED, RESIZED), mode="bilinear", align_corners=False)
    y = F.interpolate(torch.from_numpy(np.stack(ys))[:, None].float(), size=(RESIZED, RESIZED), mode="nearest")[:, 0].long()
    return x, y, torch.tensor(locs, dtype=torch.float32)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--coordinator", default=str(REPO_ROOT / ".build/release/coordinator"))
    parser.add_argument("--out", default=str(REPO_ROOT / "models/demo-water"))
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--scenes", type=int, default=12)
    parser.add_argument("--scene-size", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(15)
    rng = np.random.default_rng(15)
    out = pathlib.Path(args.out)

    run(args.coordinator, "create-model", out, *ARCH)
    config = json.loads((out / "config.json").read_text())
    init = config["pretrained_cfg"]["model"]["init_args"]
    data = config["pretrained_cfg"]["data"]["init_args"]
    means, stds = np.array(data["means"], np.float32), np.array(data["stds"], np.float32)
    model = EncoderDecoderFactory().build_model(task="segmentation", **copy.deepcopy(init["model_args"])).float()
    parameters = sum(p.numel() for p in model.parameters())
    print(f"model: {parameters} parameters", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        scenes = make_scenes(args.coordinator, pathlib.Path(tmp), args.scenes, args.scene_size)
    water = np.mean([np.mean(s["truth"] == 2) for s in scenes])
    print(f"{len(scenes)} training scenes of {args.scene_size}^2, {water:.1%} water", flush=True)

    optimiser = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    warmup = 30
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: min(1, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1, step / args.steps))))
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=-1)
    model.train()
    start = time.time()
    running = None
    for step in range(args.steps):
        x, y, loc = batch(scenes, args.batch, means, stds, rng)
        logits = model(x, location_coords=loc).output
        loss = loss_fn(logits, y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
        if step % 25 == 0 or step == args.steps - 1:
            with torch.no_grad():
                guess = logits.argmax(1)
                known = y >= 0
                tp = ((guess == 1) & (y == 1) & known).sum().item()
                union = (((guess == 1) | (y == 1)) & known).sum().item()
            print(f"step {step:4d}  loss {running:.4f}  batch water IoU {tp / max(union, 1):.3f}  {time.time() - start:.0f} s", flush=True)

    model.eval()
    weights = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items() if k != "encoder.pos_embed"}
    metadata = {
        "format": "pt",
        "generator": "scripts/train_demo_model.py",
        "weights": "trained on synthetic scenes (a toy, not a flood model)",
        "terratorch": importlib.metadata.version("terratorch"),
        "torch": torch.__version__,
        "steps": str(args.steps),
        "batch": str(args.batch),
        "training_scenes": f"{args.scenes} x create-scene --landscape varied --seed 101.. {args.scene_size}^2",
    }
    save_file(weights, str(out / "model.safetensors"), metadata=metadata)
    (out / "model.safetensors").chmod(0o644)
    card = (REPO_ROOT / "scripts/demo-model-card.md").read_text()
    (out / "README.md").write_text(card.format(parameters=parameters, steps=args.steps, batch=args.batch, scenes=args.scenes,
                                               size=args.scene_size, minutes=(time.time() - start) / 60,
                                               terratorch=importlib.metadata.version("terratorch"), torch=torch.__version__,
                                               arch=" ".join(ARCH)))
    print(f"wrote {out}: {parameters} parameters, {args.steps} steps in {(time.time() - start) / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
