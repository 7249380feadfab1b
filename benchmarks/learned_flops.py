"""Achieved FLOP/s of the learned methods' CPU inference against this machine's matmul peak.

    python benchmarks/learned_flops.py [--threads 2] [--repeats 3]
        [--backends nchw,eager,compile,onnx] [--cases lama,edgeconnect,lite]
        [--lama-ref DIR --lama-ref-python PY] [--edgeconnect-ref DIR --edgeconnect-ref-python PY]

The peak is the best of 10 fp32 ``2048 x 2048 @ 2048 x 2048`` matmuls (``2 * 2048**3``
FLOP each). Each case times the method's own ``predict`` (its test-time forward, under
``torch.inference_mode``, fp32) on one tile with a free-form hole covering 20 %, warm-up first,
then the minimum of ``--repeats`` runs, each backend's runs interleaved with the others'.
FLOPs per tile are counted once with ``torch.utils.flop_counter.FlopCounterMode`` (convolutions
and matmuls; FFTs and element-wise work are not counted, as in the reference figures).

Backends: ``nchw`` (the networks as built, contiguous NCHW, no folding: inference before
issue 26), then the three of :mod:`inpaint_core.backends`, each through
:func:`~inpaint_core.backends.run_predict` as ``inpaint`` runs them (BatchNorm folded,
channels-last where :func:`~inpaint_core.learned.prepare_for_inference` puts it): ``eager``,
``compile`` (first call = compilation) and ``onnx`` (first call = export + session; needs
onnx and onnxruntime, else the backend is reported missing and skipped). Outputs are compared
with ``nchw``'s in grey levels.

``--lama-ref CHECKOUT`` and ``--edgeconnect-ref CHECKOUT`` also time the reference
implementation's generator (advimman/lama's, knazeri/edge-connect's G1 + G2; random weights,
eager fp32 under ``no_grad``), imported from the checkout by ``benchmarks/reference_speed.py``,
interleaved with the backends as one more row, ``reference``.

Cases: ``lama`` on 512² with big-lama's architecture (``LamaConfig()``, random weights),
``edgeconnect``: ``edge-gan`` with ``architecture="edgeconnect"`` (G1 + G2, width 64, random
weights) on 256², and ``lite``: every learned method with shipped weights on 256². The
matmul peak is measured before and after the cases; the table uses the higher. Stop other work
on the machine first.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from inpaint_core import get_method, list_methods
from inpaint_core.backends import Backend, run_predict
from inpaint_core.learned import prepare_for_inference
from inpaint_core.masks import make_mask

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_speed import edgeconnect as reference_edgeconnect
from reference_speed import lama as reference_lama

MATMUL_SIDE = 2048
#: The reference implementations on this machine (issue 26): GFLOP per tile, seconds.
REFERENCE = {"lama": (440.0, 2.92), "edgeconnect": (194.0, 1.27)}
#: Builders of the reference implementations' networks from their checkouts.
REFERENCE_BUILDERS = {"lama": reference_lama, "edgeconnect": reference_edgeconnect}


def matmul_peak(repeats: int = 10) -> float:
    """Best fp32 GFLOP/s of a ``2048³`` matmul with torch's current thread count."""
    a = torch.randn(MATMUL_SIDE, MATMUL_SIDE)
    b = torch.randn(MATMUL_SIDE, MATMUL_SIDE)
    a @ b
    best = min(_seconds(lambda: a @ b) for _ in range(repeats))
    return 2 * MATMUL_SIDE**3 / best / 1e9


def _seconds(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def tile(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A photograph ``(1, 3, size, size)`` in [0, 1] and a 20 % free-form hole ``(1, 1, ...)``."""
    from skimage import data, transform

    image = transform.resize(data.astronaut(), (size, size), anti_aliasing=True)
    hole = make_mask("free_form", (size, size), 0.2, seed=0)
    tensor = torch.from_numpy(image.astype(np.float32).transpose(2, 0, 1))[None]
    return tensor.contiguous(), torch.from_numpy(hole.astype(np.float32))[None, None]


def build(name: str, changes: dict[str, Any] | None) -> tuple[Any, torch.nn.Module]:
    """The method instance and its eval-mode networks: shipped weights when ``changes`` is
    None, else random weights of ``config_class(**changes)``."""
    method_class = get_method(name)
    method = method_class(device="cpu", precision="fp32")
    if changes is None:
        return method, method.load_networks("cpu")
    torch.manual_seed(0)
    networks = method_class.build_networks(method_class.config_class(**changes))
    return method, networks.eval()


def cases(selected: list[str]) -> list[tuple[str, str, int, dict[str, Any] | None]]:
    """``(label, method, side, config changes or None)`` for the selected case groups."""
    out: list[tuple[str, str, int, dict[str, Any] | None]] = []
    if "lama" in selected:
        out.append(("lama (big-lama)", "lama", 512, {}))
    if "edgeconnect" in selected:
        out.append(("edge-gan (edgeconnect)", "edge-gan", 256, {"architecture": "edgeconnect"}))
    if "lite" in selected:
        for info in list_methods():
            if info.learned and info.name != "lama":
                out.append((f"{info.name} (shipped)", info.name, 256, None))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backends", default="nchw,eager,compile,onnx")
    parser.add_argument("--cases", default="lama,edgeconnect,lite")
    parser.add_argument("--lama-ref", type=Path, help="advimman/lama checkout")
    parser.add_argument("--edgeconnect-ref", type=Path, help="knazeri/edge-connect checkout")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    backends = args.backends.split(",")
    unknown = sorted(set(backends) - {"nchw", *(b.value for b in Backend)})
    if unknown:
        raise SystemExit(f"unknown backends {unknown}; valid: nchw, eager, compile, onnx")
    peak = matmul_peak()
    rows: list[tuple[Any, ...]] = []
    for label, name, side, changes in cases(args.cases.split(",")):
        family = "lama" if name == "lama" else "edgeconnect" if changes else None
        checkout = getattr(args, f"{family}_ref", None) if family else None
        reference = REFERENCE_BUILDERS[family](checkout) if checkout else None
        rows.extend(run_case(label, name, side, changes, backends, args.repeats, reference))
    peak = max(peak, matmul_peak())
    print(f"fp32 matmul {MATMUL_SIDE}³, {args.threads} threads: {peak:.1f} GFLOP/s (best of 20)")
    header = f"{'method':<28} {'tile':>5} {'GFLOP':>7} {'s (min)':>8} {'GFLOP/s':>8} "
    print(header + f"{'% peak':>7} {'vs ref':>7}  backend  max diff (grey)")
    for gflop, best, label, side, versus, backend, diff, warm in rows:
        rate = gflop / best
        print(
            f"{label:<28} {side:>5} {gflop:>7.1f} {best:>8.3f} {rate:>8.1f} "
            f"{100 * rate / peak:>6.0f}% {versus:>7}  {backend:<8} {diff}"
            f"  (first call {warm:.1f} s)"
        )


def run_case(
    label: str, name: str, side: int, changes: dict[str, Any] | None, backends: list[str],
    repeats: int, reference: tuple[torch.nn.Module, tuple[torch.Tensor, ...]] | None = None,
) -> list[tuple[Any, ...]]:
    """Time one case on every backend, interleaved, and ``reference`` (the reference
    implementation's network and inputs of the same architecture and size, if given); rows
    for the table."""
    method, built = build(name, changes)
    plain = copy.deepcopy(built).to(memory_format=torch.contiguous_format)
    fast = prepare_for_inference(copy.deepcopy(built), "cpu")
    image, hole = tile(side)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:  # spectral norm: no_grad
        method.predict(plain, image, hole)
    gflop = counter.get_total_flops() / 1e9
    with torch.inference_mode():
        expected, _ = method.predict(plain, image, hole)
    calls: dict[str, Callable[[], torch.Tensor]] = {}
    for backend in backends:
        if backend == "nchw":
            calls[backend] = lambda: _nchw(method, plain, image, hole)
        else:
            instance = type(method)(**dict(method.params, backend=backend))
            calls[backend] = lambda m=instance: run_predict(m, fast, image, hole, "cpu")[0]
    if reference is not None:
        network, inputs = reference
        calls["reference"] = lambda: _reference_forward(network, inputs, expected)
    diffs: dict[str, int | str] = {}
    warm: dict[str, float] = {}
    for backend, call in list(calls.items()):  # warm-up (compilation, export included)
        started = time.perf_counter()
        try:
            out = call()
        except Exception as error:  # a backend can fail on a model: report, go on
            print(f"{label}: backend {backend} failed: {str(error).splitlines()[0][:200]}")
            del calls[backend]
            continue
        warm[backend] = time.perf_counter() - started
        levels = (out.clamp(0, 1) * 255).round() - (expected.clamp(0, 1) * 255).round()
        # the reference's random weights are not ours: its outputs are not compared
        diffs[backend] = "-" if backend == "reference" else int(levels.abs().max())
    times: dict[str, list[float]] = {backend: [] for backend in calls}
    for _ in range(repeats):  # interleaved
        for backend, call in calls.items():
            times[backend].append(_seconds(call))
    ref = REFERENCE["lama"] if name == "lama" else None
    if name == "edge-gan" and changes:
        ref = REFERENCE["edgeconnect"]
    rows: list[tuple[Any, ...]] = []
    for backend in calls:
        best = min(times[backend])
        # the reference's seconds over ours (> 1 = we are faster): measured in this run when
        # given, else the figures scaled to our FLOP count
        if "reference" in times:
            versus = f"{min(times['reference']) / best:.2f}x"
        else:
            versus = f"{ref[1] * gflop / ref[0] / best:.2f}x" if ref else "-"
        rows.append((gflop, best, label, side, versus, backend, diffs[backend], warm[backend]))
    return rows


def _reference_forward(
    network: torch.nn.Module, inputs: tuple[torch.Tensor, ...], expected: torch.Tensor
) -> torch.Tensor:
    """The reference's forward, eager fp32 under ``no_grad`` as its test scripts; returns
    ``expected`` (its random weights are not ours: no difference is measured)."""
    with torch.no_grad():
        network(*inputs)
    return expected


def _nchw(method: Any, networks: torch.nn.Module, image: torch.Tensor,
          hole: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return method.predict(networks, image, hole)[0]


if __name__ == "__main__":
    main()
