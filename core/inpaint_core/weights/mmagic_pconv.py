"""The ``mmagic-pconv`` format: OpenMMLab's Partial-Conv U-Net as ``partial-conv-unet`` weights.

OpenMMLab (mmediting 0.x, now mmagic; Apache-2.0) published the stage-2 Places model as
``pconv_256x256_stage2_4x2_places_20200619-1ffed0e8.pth``: a ``torch.save`` dict
``{'meta', 'state_dict'}`` read by :func:`~inpaint_core.weights.mmagic.read_checkpoint` (no
code from the file runs). Its ``state_dict`` holds the generator (mmagic's
``PConvEncoderDecoder``) under ``generator.`` and the perceptual loss's VGG-16 under
``loss_percep.`` (not needed, not read). The generator's keys::

    encoder.enc{i}.conv.weight | .bias | .weight_mask_updater    i = 1 .. N
    encoder.enc{i}.bn.weight | .bias | .running_mean | .running_var | .num_batches_tracked
    decoder.dec{i}.conv.* | decoder.dec{i}.bn.*                  i = N .. 1

fill ``partial-conv-unet`` with ``architecture="mmagic"``, ``depth=N`` (``num_layers``: the
number of ``enc`` layers; 7 published), ``base_channels=64``:

- ``encoder.enc{i}`` -> ``encoder.{i-1}`` and ``decoder.dec{i}`` -> ``decoder.{N-i}`` (this
  project's decoder runs deepest first, as the reference's loop does), ``bn`` -> ``norm``;
- ``weight_mask_updater`` is the reference's fixed all-ones kernel that counts the valid
  inputs of a window (``multi_channel=True``: one per weight element); this project's partial
  conv counts with the same ones and stores no kernel, so each is checked to be ones of its
  weight's shape and dropped (anything else would be another network, and is refused).

A ``module.`` prefix (a ``DataParallel`` state dict) after ``generator.`` is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from inpaint_core.errors import InvalidWeightsError, ParameterError
from inpaint_core.weights.formats import ConvertedWeights, WeightsFormat, fitted_weights
from inpaint_core.weights.mmagic import network_state, prefixes, read_checkpoint, source_of

__all__ = ["FORMAT", "convert", "count_layers", "rename_key"]

NAME = "mmagic-pconv"
_EXPECTS = (
    "an OpenMMLab Partial-Conv checkpoint (.pth, a dict with 'meta' and a 'state_dict' of "
    "'generator.encoder.enc*' / 'generator.decoder.dec*' tensors), such as "
    "pconv_256x256_stage2_4x2_places_20200619-1ffed0e8.pth"
)
_LAYER = re.compile(r"^(encoder)\.enc(\d+)\.(.+)$|^(decoder)\.dec(\d+)\.(.+)$")
_MASK_KERNEL = ".conv.weight_mask_updater"
#: OpenMMLab's widths are fixed: 64 ... 512.
_BASE_CHANNELS = 64


def count_layers(generator: Mapping[str, Tensor]) -> tuple[int, int]:
    """``(encoder layers, decoder layers)``: the highest ``enc{i}`` and ``dec{i}`` indices."""
    found: dict[str, int] = {"encoder": 0, "decoder": 0}
    for key in generator:
        match = _LAYER.match(key.removeprefix("module."))
        if match:
            part = match.group(1) or match.group(4)
            index = int(match.group(2) or match.group(5))
            found[part] = max(found[part], index)
    return found["encoder"], found["decoder"]


def rename_key(key: str, depth: int) -> str:
    """A generator key (without ``generator.``) as ``partial-conv-unet``'s, e.g.
    ``decoder.dec7.bn.running_var`` -> ``decoder.0.norm.running_var`` for ``depth=7``.
    Keys of no known pattern are returned unchanged (:func:`match_state` then names them)."""
    key = key.removeprefix("module.")
    match = _LAYER.match(key)
    if not match:
        return key
    if match.group(1):
        position, rest = int(match.group(2)) - 1, match.group(3)
        part = "encoder"
    else:
        position, rest = depth - int(match.group(5)), match.group(6)
        part = "decoder"
    if rest.startswith("bn."):
        rest = "norm." + rest[len("bn.") :]
    return f"{part}.{position}.{rest}"


def _drop_mask_kernels(generator: dict[str, Tensor], path: Path) -> dict[str, Tensor]:
    """The generator without its ``weight_mask_updater`` buffers, each checked to be the
    reference's all-ones kernel of its weight's shape."""
    kept: dict[str, Tensor] = {}
    for key, value in generator.items():
        if not key.endswith(_MASK_KERNEL):
            kept[key] = value
            continue
        weight = generator.get(key[: -len("_mask_updater")])
        if weight is None or tuple(value.shape) != tuple(weight.shape):
            found = "no weight" if weight is None else f"weight {tuple(weight.shape)}"
            raise InvalidWeightsError(
                f"{NAME}: {path}: generator.{key} {tuple(value.shape)} is not a multi-channel "
                f"mask kernel of its conv ({found}); the format expects {_EXPECTS}"
            )
        if not bool(torch.all(value == 1)):
            raise InvalidWeightsError(
                f"{NAME}: {path}: generator.{key} is not all ones (min {float(value.min())}, "
                f"max {float(value.max())}): OpenMMLab's partial conv counts valid inputs "
                "with a fixed ones kernel, and this one would compute something else"
            )
    return kept


def convert(path: Path) -> ConvertedWeights:
    """Read an OpenMMLab Partial-Conv checkpoint as ``partial-conv-unet`` weights.

    Args:
        path: the ``.pth`` file as OpenMMLab publishes it.

    Returns:
        :class:`ConvertedWeights` for ``partial-conv-unet`` with ``architecture="mmagic"``,
        ``depth`` the file's ``num_layers``: the float32 state dict of ``generator``;
        ``source`` names the format, the file, ``meta``'s iteration (``iteration``, the
        sidecar's step), epoch and version, and the state_dict prefixes not read.

    Raises:
        InvalidWeightsError: not an OpenMMLab checkpoint, no ``generator.`` tensors, encoder
            and decoder depths that differ or are out of range, a mask kernel that is not the
            reference's, or keys or shapes that do not fit (the first mismatches are named).
    """
    from inpaint_core.api import get_method  # the method registry loads the plugins

    path = Path(path).expanduser()
    if not path.is_file():
        raise InvalidWeightsError(f"{NAME}: {path} is not a file; the format expects {_EXPECTS}")
    state, meta = read_checkpoint(path)
    generator = network_state(state, "generator.", path)
    encoder, decoder = count_layers(generator)
    method = get_method("partial-conv-unet")
    if encoder != decoder:
        raise InvalidWeightsError(
            f"{NAME}: {path}: the generator has {encoder} encoder and {decoder} decoder layers "
            "(enc1..encN and dec1..decN); OpenMMLab's PConvEncoderDecoder has as many of each"
        )
    try:
        config = method.config_class(architecture="mmagic", base_channels=_BASE_CHANNELS,
                                     depth=encoder, prior="none")
    except ParameterError as e:  # a depth outside 4..8: the config names the range
        raise InvalidWeightsError(f"{NAME}: {path}: num_layers={encoder}: {e}") from e
    networks = method.build_networks(config)  # type: ignore[attr-defined]
    renamed = {rename_key(key, encoder): value
               for key, value in _drop_mask_kernels(generator, path).items()}
    fits = {"generator": (networks.generator, renamed, f"{NAME} generator ({path})")}
    source: dict[str, Any] = source_of(meta, path, NAME)
    if isinstance(meta.get("iter"), int):
        source["iteration"] = meta["iter"]
    source["num_layers"] = encoder
    ignored = [prefix for prefix in prefixes(state) if prefix != "generator."]
    source["ignored"] = ignored
    return fitted_weights("partial-conv-unet", config, fits, source)


FORMAT = WeightsFormat(
    name=NAME,
    method="partial-conv-unet",
    expects=_EXPECTS,
    convert=convert,
    reference="open-mmlab/mmagic (mmagic/models/editors/pconv, PConvInpaintor)",
)
