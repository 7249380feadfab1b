"""Format ``lama-torchscript``: IOPaint's one-file ``big-lama.pt`` -> the ``lama`` method.

IOPaint (Sanster/IOPaint) serves big-lama as a TorchScript archive, whose tensors
:mod:`inpaint_core.weights.torchscript` reads by dotted name without running its code.
The generator's tensors are the ones under ``…model.N…``, laid out as in LaMa's own checkpoint.

The file carries no config, so the architecture is read off the tensors' shapes and names:
the input and output channels, ``ngf``, the number of downsampling layers and residual blocks,
the residual blocks' global ratios and where the local Fourier unit is on. The input and
downsampling convolutions are taken as purely local and the output activation as a sigmoid,
as in every published LaMa; a file that does not fit is refused naming the first mismatching
keys (use format ``lama`` with the model's ``config.yaml`` then).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from inpaint_core.errors import InvalidWeightsError
from inpaint_core.weights.formats import ConvertedWeights, WeightsFormat, fitted_weights
from inpaint_core.weights.torchscript import read_archive_tensors

__all__ = ["FORMAT", "convert"]

_LAYER = re.compile(r"^model\.(\d+)\.")


def _generator_state(tensors: dict[str, Any], where: str) -> dict[str, Any]:
    """The tensors under the shortest prefix that ends in ``model.``, with it stripped."""
    prefixes = Counter(
        key[: match.start()]
        for key in tensors
        for match in re.finditer(r"(?:^|\.)model\.\d+\.", key)
        if match.start() == 0 or key[match.start()] == "."
    )
    if not prefixes:
        raise InvalidWeightsError(f"{where} holds no LaMa generator (no '…model.N…' tensors)")
    prefix = min(prefixes, key=len)
    prefix = prefix + "." if prefix else ""
    return {
        key[len(prefix) :]: value
        for key, value in tensors.items()
        if key.startswith(prefix + "model.")
    }


def infer_config(state: dict[str, Any], where: str) -> Any:
    """A ``LamaConfig`` read off a generator state dict's names and shapes (module docstring)."""
    from inpaint_core.nn.layers.ffc import LamaConfig

    layers: dict[int, set[str]] = {}
    for key in state:
        match = _LAYER.match(key)
        if match:
            layers.setdefault(int(match.group(1)), set()).add(key[match.end() :])
    blocks = sorted(i for i, keys in layers.items() if any(k.startswith("conv1.") for k in keys))
    first = state.get("model.1.ffc.convl2l.weight")
    if first is None or not blocks:
        raise InvalidWeightsError(
            f"{where}: no LaMa input conv ('model.1.ffc.convl2l.weight') or residual blocks "
            "found; use format 'lama' with the model's config.yaml"
        )
    n_downsampling = blocks[0] - 2
    block = blocks[0]
    local = state[f"model.{block}.conv1.ffc.convl2l.weight"]
    total = int(first.shape[0]) * 2**n_downsampling
    output = state.get(f"model.{max(layers)}.weight")  # the last conv (the sigmoid has none)
    if output is None or max(layers) in blocks:
        raise InvalidWeightsError(f"{where}: no output convolution found after the blocks")

    def lfu(indices: list[int]) -> bool:
        return any(".lfu." in k for i in indices for k in layers.get(i, ()))

    return LamaConfig(
        input_nc=int(first.shape[1]),
        output_nc=int(output.shape[0]),
        ngf=int(first.shape[0]),
        n_downsampling=n_downsampling,
        n_blocks=len(blocks),
        init_enable_lfu=lfu([1]),
        downsample_enable_lfu=lfu(list(range(2, 2 + n_downsampling))),
        resnet_ratio_gin=1.0 - int(local.shape[1]) / total,
        resnet_ratio_gout=1.0 - int(local.shape[0]) / total,
        resnet_enable_lfu=lfu(blocks),
    )


def convert(path: Path) -> ConvertedWeights:
    """Read IOPaint's ``big-lama.pt``; see the module docstring.

    Args:
        path: the TorchScript file.

    Returns:
        The ``lama`` method's config (inferred) and ``{"generator": state}``.

    Raises:
        MissingWeightsError: the file does not exist.
        InvalidWeightsError: not a TorchScript archive of a LaMa generator, or tensors that do
            not fit the inferred architecture (the first mismatching keys are named).
    """
    from inpaint_core.nn.layers.ffc import FfcResNetGenerator

    path = Path(path)
    tensors = read_archive_tensors(path, "lama-torchscript", FORMAT.expects,
                                   "for LaMa's own big-lama folder use format 'lama'")
    state = _generator_state(tensors, str(path))
    config = infer_config(state, str(path))
    inferred = (
        f"inferred ngf={config.ngf}, n_downsampling={config.n_downsampling}, "
        f"n_blocks={config.n_blocks}"
    )
    what = f"lama-torchscript generator ({path}, {inferred})"
    return fitted_weights(
        "lama", config, {"generator": (FfcResNetGenerator(config), state, what)},
        source={"format": "lama-torchscript", "files": [str(path)], "config": "inferred"},
    )


FORMAT = WeightsFormat(
    name="lama-torchscript",
    method="lama",
    expects="IOPaint's TorchScript file big-lama.pt",
    convert=convert,
    reference="advimman/lama, as traced by Sanster/IOPaint",
)
