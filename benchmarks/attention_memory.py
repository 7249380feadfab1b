"""Peak memory and time of contextual attention on the CPU at DeepFill v2's feature sizes.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/attention_memory.py [--sizes 256 512 1024]
        [--channels 96] [--hole 0.5] [--max-elements 16777216] [--no-fuse]

For each image side S, the features are ``(1, channels, S/4, S/4)`` (DeepFill v2's attention
branch at 1/4 resolution; 96 channels at the official width ``base_channels=48``) and the hole
is a centred square of side ``hole * S``. Each size runs in a fresh process under
``torch.no_grad`` (inference); the script prints the process's peak resident memory
(``ru_maxrss``), the rise over its baseline after the inputs exist, and the wall time, next
to the size of the full ``(HW)^2`` score volume the official implementation would allocate.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

_MIB = 1024.0


def measure(size: int, channels: int, hole: float, max_elements: int, fuse: bool) -> dict:
    """Run one attention call in this process; return its figures."""
    import torch

    from inpaint_core.nn.layers.attention import ContextualAttention

    torch.manual_seed(0)
    side = size // 4
    features = torch.rand(1, channels, side, side)
    mask = torch.zeros(1, 1, side, side)
    lo, hi = round(side * (1 - hole) / 2), round(side * (1 + hole) / 2)
    mask[..., lo:hi, lo:hi] = 1.0
    layer = ContextualAttention(rate=2, softmax_scale=10.0, fuse=fuse, max_elements=max_elements)
    with torch.no_grad():  # warm-up on a tiny input: loads kernels, not counted in the rise
        layer(
            torch.rand(1, channels, 16, 16),
            torch.zeros(1, 1, 16, 16).index_fill_(2, torch.tensor([8]), 1.0),
        )
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / _MIB
    start = time.perf_counter()
    with torch.no_grad():
        out = layer(features, mask)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / _MIB
    grid = (side // 2) ** 2
    return {
        "image": size,
        "features": f"{channels}x{side}x{side}",
        "full_scores_gib": grid * grid * 4 / 2**30,
        "peak_rss_mib": round(peak, 1),
        "rise_mib": round(peak - baseline, 1),
        "seconds": round(seconds, 2),
        "finite": bool(torch.isfinite(out).all()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--channels", type=int, default=96)
    parser.add_argument("--hole", type=float, default=0.5, help="hole side / image side")
    parser.add_argument("--max-elements", type=int, default=2**24)
    parser.add_argument("--no-fuse", action="store_true")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    fuse = not args.no_fuse
    if args.one:
        print(json.dumps(measure(args.one, args.channels, args.hole, args.max_elements, fuse)))
        return
    print(
        f"contextual attention, rate 2, fuse={fuse}, max_elements={args.max_elements}, "
        f"hole {args.hole:.0%} of the side, torch threads from OMP_NUM_THREADS"
    )
    print(
        f"{'image':>6} {'features':>14} {'full (HW)^2 GiB':>16} {'peak RSS MiB':>13} "
        f"{'rise MiB':>9} {'seconds':>8}"
    )
    for size in args.sizes:
        command = [
            sys.executable,
            __file__,
            "--one",
            str(size),
            "--channels",
            str(args.channels),
            "--hole",
            str(args.hole),
            "--max-elements",
            str(args.max_elements),
        ]
        if not fuse:
            command.append("--no-fuse")
        row = json.loads(
            subprocess.run(command, check=True, capture_output=True, text=True)
            .stdout.strip()
            .splitlines()[-1]
        )
        print(
            f"{row['image']:>6} {row['features']:>14} {row['full_scores_gib']:>16.2f} "
            f"{row['peak_rss_mib']:>13.1f} {row['rise_mib']:>9.1f} {row['seconds']:>8.2f}"
        )


if __name__ == "__main__":
    main()
