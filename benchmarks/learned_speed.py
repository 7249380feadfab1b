"""Per-image test time and peak memory of learned methods at 256, 512 and 1024 pixels.

    python benchmarks/learned_speed.py [--methods edge-gan] [--sizes 256,512,1024]
        [--device cpu] [--repeats 3] [--weights FILE]

Each method restores a photograph (scikit-image's ``astronaut``, resized) with a free-form
hole covering 20 % of it, once to warm up (weights loaded, kernels chosen) and then
``--repeats`` times; the table gives the median wall time, the peak extra RAM of the process
and, on CUDA, the peak GPU memory (the survey's "resources" columns). Stop other work on the
machine first: the figures are wall-clock times.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
from skimage import data, transform

from inpaint_core import get_method, inpaint
from inpaint_core.devices import resolve_device
from inpaint_core.evaluation.resources import ResourceMeter
from inpaint_core.masks import make_mask


def photograph(size: int) -> np.ndarray:
    """uint8 ``(size, size, 3)``: the astronaut resized."""
    resized = transform.resize(data.astronaut(), (size, size), anti_aliasing=True)
    return np.rint(resized * 255).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", default="edge-gan", help="learned methods, comma-separated")
    parser.add_argument("--sizes", default="256,512,1024")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--weights", help="a checkpoint instead of the shipped weights")
    args = parser.parse_args()
    device = resolve_device(args.device)
    sizes = [int(size) for size in args.sizes.split(",")]
    print(f"device {device}; free-form hole 20 %; median of {args.repeats} runs")
    print(f"{'method':<12} {'size':>6} {'seconds':>9} {'RAM MB':>8} {'GPU MB':>8}")
    for name in args.methods.split(","):
        params = {"device": device}
        if args.weights:
            params["weights"] = args.weights
        method = get_method(name)(**params)
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
            print(f"{name:<12} {size:>6} {statistics.median(times):9.3f} {max(ram):8.0f} "
                  f"{max(gpu):8.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
