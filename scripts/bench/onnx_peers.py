"""ONNX Runtime and OpenVINO on the model `coordinator bench` times: TerraTorch's Prithvi-EO-2.0-300M-TL +
UperNet (Sen1Floods11 head) with random weights, exported once to ONNX, timed on 224×224 tiles in fp32.

    python scripts/bench/onnx_peers.py --export bench-models/prithvi-300m.onnx   # once (needs terratorch)
    python scripts/bench/onnx_peers.py --model bench-models/prithvi-300m.onnx --runtime onnxruntime --threads 2
    python scripts/bench/onnx_peers.py --model bench-models/prithvi-300m.onnx --runtime openvino --threads 2

Needs `pip install onnx onnxscript onnxruntime openvino` (and terratorch for --export). The export uses
`torch.onnx.export(..., dynamo=True)`: the TorchScript exporter fails on UperNet's adaptive pooling (7 → 1, 2,
3, 6). OpenVINO is asked for f32 inference precision (on CPUs with bf16 it would otherwise pick bf16), latency
mode and the given thread count; ONNX Runtime for `intra_op_num_threads` and sequential execution. Prints
per-pass times and a last line `median_tile_ms: X` (median pass time divided by the batch), like
`coordinator bench`, so they can be run side by side.
"""
import argparse

import numpy as np
from passes import time_passes


def export(path: str) -> None:
    import torch
    from prithvi_reference import build_model

    model = build_model()

    class Logits(torch.nn.Module):
        """The model's logits as a plain tensor (its ModelOutput is not exportable)."""

        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, image: torch.Tensor, location: torch.Tensor) -> torch.Tensor:
            return self.inner(image, location_coords=location).output

    image = torch.randn(1, 6, 224, 224)
    location = torch.tensor([[12.49, 41.89]])
    batch = torch.export.Dim("batch", min=1, max=64)
    program = torch.onnx.export(
        Logits(model).eval(), (image, location), dynamo=True, input_names=["image", "location"], output_names=["logits"],
        dynamic_shapes={"image": {0: batch}, "location": {0: batch}},
    )
    program.save(path)
    print(f"wrote {path} (torch {torch.__version__})")


def session(runtime: str, path: str, threads: int):
    """A callable running one forward pass on (image, location)."""
    if runtime == "onnxruntime":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        print(f"onnxruntime {ort.__version__}, {threads} threads")
        return lambda image, location: sess.run(None, {"image": image, "location": location})[0]
    import openvino as ov

    core = ov.Core()
    compiled = core.compile_model(path, "CPU", {
        "INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32",
    })
    request = compiled.create_infer_request()
    print(f"openvino {ov.__version__}, {threads} threads, precision {compiled.get_property('INFERENCE_PRECISION_HINT')}")

    def run(image, location):
        request.infer({"image": image, "location": location})
        return request.get_output_tensor(0).data

    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--export", metavar="PATH", help="write the ONNX model to PATH and stop")
    parser.add_argument("--model", help="the exported ONNX model")
    parser.add_argument("--runtime", choices=["onnxruntime", "openvino"], default="onnxruntime")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tiles", type=int, default=5)
    parser.add_argument("--batch", type=int, default=1)
    args = parser.parse_args()
    if args.export:
        export(args.export)
        return
    if not args.model:
        parser.error("--model (an exported ONNX file) or --export is required")
    run = session(args.runtime, args.model, args.threads)
    rng = np.random.default_rng(0)
    image = rng.standard_normal((args.batch, 6, 224, 224), dtype=np.float32)
    location = np.array([[12.49, 41.89]] * args.batch, dtype=np.float32)
    logits = run(image, location)  # warm-up
    assert logits.shape == (args.batch, 2, 224, 224), logits.shape
    time_passes(lambda: run(image, location), args.tiles, args.batch)


if __name__ == "__main__":
    main()
