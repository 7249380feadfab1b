"""Format ``mmagic-deepfillv2``: OpenMMLab's DeepFill v2 checkpoint -> ``deepfill-v2`` weights.

OpenMMLab (mmediting 0.x, now mmagic; Apache-2.0) published
``deepfillv2_256x256_8x2_places_20200619-10d15793.pth``: one ``torch.save`` dict with
``meta`` and ``state_dict``, which holds the generator (``generator.stage1.*``,
``generator.stage2.*``: ``DeepFillEncoderDecoder``) and the SN-PatchGAN discriminator
(``disc.*``). It is read by :mod:`inpaint_core.weights.mmagic` with the restricted loader,
so no code from the file runs. The discriminator is not needed to inpaint: its keys are only
checked to be there (a file without them is not this layout).

The generator's keys are mmagic's module names, which ``deepfill-v2`` with
``architecture="mmagic"`` (:mod:`inpaint_core.nn.layers.deepfill_mmagic`) keeps, so no key is
renamed: mmediting v0.5.0's modules (in open-mmlab/mmagic's history; the file dates from
June 2020) have the same attribute names, config and arithmetic as mmagic's. The widths are
read from the tensors: ``channel_factor`` from stage 1's first conv (``int(32 * f)`` features,
twice as many filters), ``refine_channel_factor`` from stage 2's decoder's first conv
(``int(128 * f)``); every other shape is then checked by :func:`match_state`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from inpaint_core.errors import InvalidInputError, InvalidWeightsError, ParameterError
from inpaint_core.weights.formats import ConvertedWeights, WeightsFormat, fitted_weights
from inpaint_core.weights.mmagic import (
    network_state,
    read_checkpoint,
    require_prefix,
    source_of,
)

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["FORMAT", "convert", "infer_factors"]

NAME = "mmagic-deepfillv2"
_EXPECTS = ("OpenMMLab's DeepFill v2 checkpoint (.pth), e.g. "
            "deepfillv2_256x256_8x2_places_20200619-10d15793.pth")
#: The first conv of stage 1's encoder (``int(32 * channel_factor)`` gated features) and of
#: stage 2's decoder (``int(128 * refine_channel_factor)``).
_STAGE1_FIRST = "stage1.encoder.enc1.conv.conv.weight"
_REFINE_FIRST = "stage2.decoder.dec1.conv.conv.weight"
_DISCRIMINATOR = "disc."


def infer_factors(state: dict[str, Tensor], path: str | Path) -> tuple[float, float]:
    """``(channel_factor, refine_channel_factor)`` of a generator state dict.

    Raises:
        InvalidWeightsError: a key is missing or a width is not a whole factor's.
    """
    factors = []
    for key, base in ((_STAGE1_FIRST, 32), (_REFINE_FIRST, 128)):
        if key not in state:
            raise InvalidWeightsError(
                f"{path}: generator has no {key!r}; is it OpenMMLab's DeepFill v2 "
                "(DeepFillEncoderDecoder with gated convs)?"
            )
        filters = int(state[key].shape[0])
        if filters % 2:
            raise InvalidWeightsError(f"{path}: {key} has {filters} filters; a gated conv has "
                                      "an even number (features and gates)")
        factors.append(filters // 2 / base)
    return factors[0], factors[1]


def convert(path: Path) -> ConvertedWeights:
    """Read OpenMMLab's DeepFill v2 file; see the module docstring.

    Args:
        path: the ``.pth`` file as published.

    Returns:
        ``deepfill-v2`` weights with ``architecture="mmagic"`` and the widths the file has:
        ``{"generator": state}`` (float32); ``source`` names the format, the file, and the
        iteration / epoch / version ``meta`` gives.

    Raises:
        InvalidWeightsError: not an OpenMMLab checkpoint, no ``generator.*`` or ``disc.*``
            tensors, or generator tensors that do not fit (the first missing / unexpected /
            mis-shaped keys are named).
    """
    from inpaint_core.api import get_method  # the method registry loads the plugins

    path = Path(path).expanduser()
    state, meta = read_checkpoint(path)
    generator = network_state(state, "generator.", path)
    require_prefix(state, _DISCRIMINATOR, path, NAME,
                   f"{_EXPECTS}, which holds the generator and the discriminator")
    channel_factor, refine_channel_factor = infer_factors(generator, path)
    method = get_method("deepfill-v2")
    try:
        config = method.config_class(architecture="mmagic", channel_factor=channel_factor,
                                     refine_channel_factor=refine_channel_factor)
        networks = method.build_networks(config)  # type: ignore[attr-defined]
    except (ParameterError, InvalidInputError) as error:
        raise InvalidWeightsError(f"{path}: widths that fit no DeepFill v2: {error}") from None
    fits = {"generator": (networks.generator, generator, f"{NAME} generator ({path})")}
    return fitted_weights("deepfill-v2", config, fits, source_of(meta, path, NAME))


FORMAT = WeightsFormat(
    name=NAME,
    method="deepfill-v2",
    expects=_EXPECTS,
    convert=convert,
    reference="open-mmlab/mmagic (mmediting 0.x) DeepFillEncoderDecoder, TwoStageInpaintor",
)
