"""Per-image test time and peak memory of learned methods at 256, 512 and 1024 pixels.

    python benchmarks/learned_speed.py [--methods all] [--sizes 256,512,1024]
        [--device cpu] [--repeats 3] [--weights FILE]

Each method restores a photograph (scikit-image's ``astronaut``, resized) with a free-form
hole covering 20 % of it, once to warm up (weights loaded, kernels chosen) and then
``--repeats`` times; the table gives the median wall time, the peak extra RAM of the process
and, on CUDA, the peak GPU memory (the survey's "resources" columns), beside the inference
networks' parameter count and the training time per 1000 steps of the weights used (from their
sidecar: wall time / steps, with the batch, size and hardware they were trained on). Stop other
work on the machine first: the figures are wall-clock times.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
from skimage import data, transform

from inpaint_core import get_method, inpaint, list_methods
from inpaint_core.devices import resolve_device
from inpaint_core.evaluation.resources import ResourceMeter
from inpaint_core.masks import make_mask


def photograph(size: int) -> np.ndarray:
    """uint8 ``(size, size, 3)``: the astronaut resized."""
    resized = transform.resize(data.astronaut(), (size, size), anti_aliasing=True)
    return np.rint(resized * 255).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", default="all", help="learned methods, comma-separated")
    parser.add_argument("--sizes", default="256,512,1024")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--weights", help="a checkpoint instead of the shipped weights")
    args = parser.parse_args()
    device = resolve_device(args.device)
    sizes = [int(size) for size in args.sizes.split(",")]
    print(f"device {device}; free-form hole 20 %; median of {args.repeats} runs")
    names = args.methods.split(",")
    if args.methods == "all":
        names = [info.name for info in list_methods() if info.learned]
    print(f"{'method':<16} {'size':>6} {'seconds':>9} {'RAM MB':>8} {'GPU MB':>8} "
          f"{'params M':>9} {'train s/1k':>11}  trained on")
    for name in names:
        params = {"device": device}
        if args.weights:
            params["weights"] = args.weights
        method = get_method(name)(**params)
        networks = method.load_networks(device)
        count = sum(p.numel() for p in networks.parameters()) / 1e6
        info = networks.checkpoint_info
        per_1k = info.wall_seconds / max(info.step, 1) * 1000
        batch = info.extra.get("train_config", {}).get("batch_size", "?")
        side = info.training_data.get("size", "?")
        trained = f"{info.step} steps, batch {batch}, {side} px, {info.hardware.get('device')}"
        for size in sizes:
            image = photograph(size)
            hole = make_mask("free_form", (size, size), 0.20, seed=size)
            inpaint(image, hole, method)  # warm-up: load weights, pick kernels
            times, ram, gpu = [], [], []
            for _ in range(args.repeats):
                with ResourceMeter(device) as meter:
                    inpaint(image, hole, method)
                times.append(meter.seconds)
                ram.append(meter.peak_ram_mb)
                gpu.append(meter.peak_gpu_mb)
            print(f"{name:<16} {size:>6} {statistics.median(times):9.3f} {max(ram):8.0f} "
                  f"{max(gpu):8.0f} {count:9.2f} {per_1k:11.0f}  {trained}")


if __name__ == "__main__":
    main()
