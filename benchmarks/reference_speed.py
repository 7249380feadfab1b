"""Eager fp32 CPU time of a reference implementation's generator, for ``learned_flops.py``.

Run it with the reference's own environment (it imports the reference checkout, never this
project)::

    /tmp/ref-lama/bin/python benchmarks/reference_speed.py lama /tmp/lama-ref
    /tmp/ref-edgeconnect/bin/python benchmarks/reference_speed.py edgeconnect \\
        /tmp/edge-connect-ref

``lama``: advimman/lama's ``FFCResNetGenerator`` with big-lama's architecture (ngf 64, three
downsamplings, 18 blocks, 75 % global channels; random weights, eval mode) on ``(1, 4, 512,
512)``. ``edgeconnect``: knazeri/edge-connect's ``EdgeGenerator`` (spectral norm) then
``InpaintGenerator`` on 256² (``(1, 3, ...)`` then ``(1, 4, ...)``), random weights, eval mode.
Both under ``torch.no_grad``, as their test scripts, with ``--threads`` threads: one warm-up,
then ``--repeats`` timed forwards. Prints one JSON line: ``{"seconds": [...]}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch


def lama(checkout: Path) -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
    stubs = Path(tempfile.mkdtemp(prefix="lama-stubs-"))  # imports unused on this path
    (stubs / "kornia" / "geometry").mkdir(parents=True)
    (stubs / "kornia" / "__init__.py").write_text("")
    (stubs / "kornia" / "geometry" / "__init__.py").write_text("")
    (stubs / "kornia" / "geometry" / "transform.py").write_text("def rotate(*a, **k): ...\n")
    (stubs / "pytorch_lightning").mkdir()
    (stubs / "pytorch_lightning" / "__init__.py").write_text("def seed_everything(*a): ...\n")
    sys.path[:0] = [str(stubs), str(checkout)]
    from saicinpainting.training.modules.ffc import FFCResNetGenerator

    local = {"ratio_gin": 0, "ratio_gout": 0, "enable_lfu": False}
    generator = FFCResNetGenerator(
        4, 3, ngf=64, n_downsampling=3, n_blocks=18, add_out_act="sigmoid",
        init_conv_kwargs=local, downsample_conv_kwargs=local,
        resnet_conv_kwargs={"ratio_gin": 0.75, "ratio_gout": 0.75, "enable_lfu": False},
    )
    return generator.eval(), (torch.rand(1, 4, 512, 512),)


class _EdgeConnect(torch.nn.Module):
    def __init__(self, edges: torch.nn.Module, inpaint: torch.nn.Module) -> None:
        super().__init__()
        self.edges, self.inpaint = edges, inpaint

    def forward(self, grey_edges_mask: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        edges = self.edges(grey_edges_mask)
        return self.inpaint(torch.cat([image, edges], dim=1))


def edgeconnect(checkout: Path) -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
    sys.path.insert(0, str(checkout))
    from src.networks import EdgeGenerator, InpaintGenerator

    model = _EdgeConnect(EdgeGenerator(use_spectral_norm=True), InpaintGenerator())
    return model.eval(), (torch.rand(1, 3, 256, 256), torch.rand(1, 3, 256, 256))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", choices=("lama", "edgeconnect"))
    parser.add_argument("checkout", type=Path, help="the reference's source tree")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, inputs = (lama if args.model == "lama" else edgeconnect)(args.checkout)
    seconds = []
    with torch.no_grad():
        model(*inputs)
        for _ in range(args.repeats):
            started = time.perf_counter()
            model(*inputs)
            seconds.append(time.perf_counter() - started)
    print(json.dumps({"seconds": seconds}))


if __name__ == "__main__":
    main()
