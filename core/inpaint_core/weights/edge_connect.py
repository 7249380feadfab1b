"""The ``edge-connect`` format: EdgeConnect's published generators as ``edge-gan`` weights.

K. Nazeri et al. published EdgeConnect (knazeri/edge-connect; Places2, CelebA and Paris
StreetView checkpoints; CC BY-NC 4.0) as a folder per dataset holding, among others,

- ``EdgeModel_gen.pth``: ``{"iteration": int, "generator": state_dict}`` of the edge generator
  (G1: 3 -> 1 channels, spectral norm on every conv but the last),
- ``InpaintingModel_gen.pth``: the same for the image generator (G2: 4 -> 3 channels).

The files of 2019 are legacy (pre-zip) torch pickles; newer ``torch.save`` files are zip
archives. Both are read by :func:`~inpaint_core.weights.pickles.load_pickled`, which runs no
code from the file. The discriminators (``*_dis.pth``) are not needed and not read.

The state dicts fill ``edge-gan`` with ``architecture="edgeconnect"`` (64 channels, 8 residual
blocks), whose generators have EdgeConnect's layer indices. Two renames make the keys fit:

- ``middle.N.conv_block.*`` -> ``middle.N.block.*`` (this project's residual block), and
- spectral norm: the reference wraps G1's convs in the old ``torch.nn.utils.spectral_norm``,
  which stores ``weight_orig``, ``weight_u`` and ``weight_v``; ``edge-gan`` uses torch's
  parametrisation, which stores the same three tensors as ``parametrizations.weight.original``,
  ``parametrizations.weight.0._u`` and ``parametrizations.weight.0._v``. They are mapped, not
  folded into plain weights: in eval mode both compute ``weight_orig / (u . (W v))`` from the
  stored ``u`` and ``v`` with the same float32 operations each forward (no power iteration), so
  the mapping is exact by construction and needs no arithmetic here, and the imported G1 stays
  the same module tree as every other ``edge-gan`` G1 (it can be fine-tuned as such). A
  pre-folded weight would instead be computed once, in other operations, and differ from the
  reference's in the last bits.

A ``module.`` prefix (a state dict saved from ``nn.DataParallel``) is dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor

from inpaint_core.checkpoint import sha256_file
from inpaint_core.errors import InvalidWeightsError
from inpaint_core.weights.formats import (
    ConvertedWeights,
    WeightsFormat,
    fitted_weights,
    tensor_state,
)
from inpaint_core.weights.pickles import load_pickled

__all__ = ["FILES", "FORMAT", "convert", "rename_key"]

#: ``edge-gan``'s network (child) name -> the published file that holds it.
FILES: dict[str, str] = {
    "edge_generator": "EdgeModel_gen.pth",
    "image_generator": "InpaintingModel_gen.pth",
}
_NAMES = {"edge_generator": "G1", "image_generator": "G2"}
_EXPECTS = "a folder holding EdgeModel_gen.pth and InpaintingModel_gen.pth"
#: Old spectral-norm suffixes -> torch parametrisation names.
_SPECTRAL = {
    "weight_orig": "parametrizations.weight.original",
    "weight_u": "parametrizations.weight.0._u",
    "weight_v": "parametrizations.weight.0._v",
}


def rename_key(key: str) -> str:
    """An EdgeConnect generator ``state_dict`` key as ``edge-gan``'s, e.g.
    ``middle.3.conv_block.1.weight_orig`` -> ``middle.3.block.1.parametrizations.weight.original``.
    Keys of no known pattern are returned unchanged (:func:`match_state` then names them)."""
    parts = key.split(".")
    if parts[0] == "module":
        parts = parts[1:]
    if len(parts) > 2 and parts[0] == "middle" and parts[2] == "conv_block":
        parts[2] = "block"
    if parts and parts[-1] in _SPECTRAL:
        parts[-1:] = _SPECTRAL[parts[-1]].split(".")
    return ".".join(parts)


def _read_generator(path: Path) -> tuple[dict[str, Tensor], int | None]:
    """The ``generator`` state dict of one published file (keys renamed, float32) and its
    ``iteration`` (None when absent)."""
    data = load_pickled(path)
    if not isinstance(data, Mapping) or not isinstance(data.get("generator"), Mapping):
        found = sorted(map(str, data)) if isinstance(data, Mapping) else type(data).__name__
        raise InvalidWeightsError(
            f"edge-connect: {path} holds no 'generator' state dict (found: {found}); the format "
            f"expects {_EXPECTS}, each a dict {{'iteration': int, 'generator': state_dict}} as "
            "EdgeConnect saves them"
        )
    generator = tensor_state(data["generator"], f"edge-connect: {path}: 'generator'",
                             "a state dict of tensors")
    state = {rename_key(key): value.float() if value.is_floating_point() else value
             for key, value in generator.items()}
    iteration = data.get("iteration")
    return state, int(iteration) if isinstance(iteration, int | float) else None


def convert(path: Path) -> ConvertedWeights:
    """Read an EdgeConnect checkpoint folder as ``edge-gan`` weights.

    Args:
        path: a folder holding ``EdgeModel_gen.pth`` and ``InpaintingModel_gen.pth``.

    Returns:
        :class:`ConvertedWeights` for ``edge-gan`` with ``architecture="edgeconnect"``: float32
        state dicts of ``edge_generator`` and ``image_generator``; ``source`` names the
        format, the files (with their sha256), G2's training ``iteration`` (an int) and each
        network's (``iterations``, None where a file has none).

    Raises:
        InvalidWeightsError: ``path`` is not a folder, a file is missing or unreadable, lacks
            ``generator``, or its keys or shapes do not fit (the first mismatches are named).
    """
    from inpaint_core.api import get_method  # the method registry loads the plugins

    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise InvalidWeightsError(
            f"edge-connect: {folder} is not a folder; the format expects {_EXPECTS}"
        )
    for name in FILES.values():  # say what is missing before reading anything
        if not (folder / name).is_file():
            raise InvalidWeightsError(
                f"edge-connect: {folder / name} does not exist; the format expects {_EXPECTS} "
                "(the checkpoint folder of one dataset from knazeri/edge-connect)"
            )
    read = {child: _read_generator(folder / name) for child, name in FILES.items()}
    method = get_method("edge-gan")
    config = method.config_class(architecture="edgeconnect", base_channels=64,
                                 residual_blocks=8, prior="none")
    networks = method.build_networks(config)  # type: ignore[attr-defined]
    states = {child: (getattr(networks, child), state,
                      f"edge-connect {_NAMES[child]} ({folder / FILES[child]})")
              for child, (state, _) in read.items()}
    iterations = {child: iteration for child, (_, iteration) in read.items()}
    hashes = {name: sha256_file(folder / name) for name in FILES.values()}
    # "iteration" is an int, the checkpoint's step (import_weights writes it as the sidecar's
    # step): G2's, the stage EdgeConnect trains and saves last; both are in "iterations".
    source: dict[str, Any] = {
        "format": "edge-connect",
        "iteration": iterations["image_generator"] or 0,
        "iterations": iterations,
        "files": list(FILES.values()),
        "sha256": hashes,
    }
    return fitted_weights("edge-gan", config, states, source)


FORMAT = WeightsFormat(
    name="edge-connect",
    method="edge-gan",
    expects=_EXPECTS,
    convert=convert,
    reference="knazeri/edge-connect",
)
