"""Format ``mi-gan``: MI-GAN's published generator files -> the ``mi-gan`` method.

Picsart AI Research publish ``migan_256_places2.pt``, ``migan_512_places2.pt`` and
``migan_256_ffhq.pt`` (a Google Drive folder linked from github.com/Picsart-AI-Research/MI-GAN;
MIT). Each is ``torch.save(model.state_dict())`` of the inference generator
(``lib/model_zoo/migan_inference.py``, written by ``scripts/export_inference_model.py``): a dict
of tensors keyed ``synthesis.b4.conv1.conv1.weight`` ... ``encoder.b512.fromrgb.bias``,
including the fixed filters, zero-insertion grids and noise maps. It is read with
:func:`~inpaint_core.weights.pickles.load_pickled` (no code from it runs).

The file carries no config: the model side is the largest encoder block (``encoder.bR``) and
the channel rule ``min(ch_base // r, ch_max)`` is read off the blocks' widths
(:func:`infer_config`). Tensors that do not fit the inferred network are refused naming the
first mismatching keys.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inpaint_core.errors import InvalidWeightsError, MissingWeightsError, ParameterError
from inpaint_core.weights.formats import (
    ConvertedWeights,
    WeightsFormat,
    fitted_weights,
    tensor_state,
)

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["FORMAT", "convert", "converted", "infer_config"]

_ENCODER_BLOCK = re.compile(r"^encoder\.b(\d+)\.conv1\.conv1\.weight$")


def infer_config(state: Mapping[str, Any], where: str) -> Any:
    """The :class:`~inpaint_core.nn.layers.mi_gan.MiGanConfig` of a generator state dict.

    The model side ``R`` is the largest ``encoder.bR`` block; ``ch_max`` the widest block;
    ``ch_base`` is ``ch(R) * R`` (the published rule gives ``32768 = 64 * 512``).

    Args:
        state: tensors by ``state_dict`` key (``encoder.…``, ``synthesis.…``).
        where: names the file in errors.

    Raises:
        InvalidWeightsError: no MI-GAN encoder blocks, or a side MI-GAN does not define.
    """
    from inpaint_core.nn.layers.mi_gan import MiGanConfig

    widths = {int(m.group(1)): int(state[key].shape[0])
              for key in state if (m := _ENCODER_BLOCK.match(str(key)))}
    if not widths:
        sample = ", ".join(list(map(str, state))[:5]) or "none"
        raise InvalidWeightsError(
            f"{where} holds no MI-GAN generator: no 'encoder.bN.conv1.conv1.weight' tensors "
            f"(first keys: {sample})"
        )
    side = max(widths)
    try:
        return MiGanConfig(resolution=side, ch_base=widths[side] * side,
                           ch_max=max(widths.values()))
    except ParameterError as error:
        raise InvalidWeightsError(f"{where}: {error}") from None


def converted(state: Mapping[str, Tensor], path: Path, format_name: str) -> ConvertedWeights:
    """Infer the config of generator ``state`` read from ``path`` and check that it fits.

    Raises:
        InvalidWeightsError: see :func:`infer_config`, or tensors that do not fit (named).
    """
    from inpaint_core.nn.layers.mi_gan import MiGanGenerator

    config = infer_config(state, str(path))
    inferred = f"resolution={config.resolution}, ch_base={config.ch_base}, ch_max={config.ch_max}"
    what = f"{format_name} generator ({path}, inferred {inferred})"
    return fitted_weights(
        "mi-gan", config, {"generator": (MiGanGenerator(config), state, what)},
        source={"format": format_name, "files": [Path(path).name], "config": "inferred"},
    )


def convert(path: Path) -> ConvertedWeights:
    """Read ``migan_256_places2.pt`` and its siblings; see the module docstring.

    Args:
        path: the ``.pt`` file.

    Returns:
        The ``mi-gan`` method's config (inferred) and ``{"generator": state}``.

    Raises:
        MissingWeightsError: the file does not exist.
        InvalidWeightsError: not a torch file, not a dict of tensors, or tensors that do not
            fit the inferred generator (the first mismatching keys are named).
    """
    path = Path(path)
    if not path.is_file():
        raise MissingWeightsError(
            f"{path} does not exist; format 'mi-gan' expects {FORMAT.expects}"
        )
    from inpaint_core.weights.pickles import Placeholder, load_pickled

    payload = load_pickled(path)
    if isinstance(payload, Placeholder) and payload.global_name.startswith("__torch__."):
        raise InvalidWeightsError(
            f"{path} is a TorchScript archive; for IOPaint's migan_traced.pt use format "
            "'mi-gan-torchscript'"
        )
    return converted(tensor_state(payload, str(path), "a MI-GAN state dict"), path, "mi-gan")


FORMAT = WeightsFormat(
    name="mi-gan",
    method="mi-gan",
    expects="MI-GAN's generator file migan_256_places2.pt, migan_512_places2.pt or "
    "migan_256_ffhq.pt (a state dict)",
    convert=convert,
    reference="Picsart-AI-Research/MI-GAN lib/model_zoo/migan_inference.py",
)
