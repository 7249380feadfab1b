"""The ``context-encoder-pytorch`` format: the published Context Encoder as ``context-encoder``.

Pathak et al. released their centre-region Context Encoder as Lua Torch ``.t7`` files
(pathak22/context-encoder). Its PyTorch port, BoyuanJiang/context_encoder_pytorch (MIT),
re-implements the same generator layer for layer and publishes ``netG_streetview.pth``
(Paris StreetView): ``{"epoch": int, "state_dict": netG.state_dict()}``, whose keys are
``main.N.weight`` / ``main.N.running_mean`` ... of one ``nn.Sequential``. It is read by
:func:`~inpaint_core.weights.pickles.load_pickled` (no code from the file runs) and fills
``context-encoder`` with ``architecture="pathak"``, whose generator has the same layer indices.
The widths (``nef``, ``ngf``, ``nBottleneck``) are read from the tensors' shapes. A ``module.``
prefix (``nn.DataParallel``) is dropped. A plain state dict (no ``state_dict`` wrapper) is
accepted too.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor

from inpaint_core.errors import InvalidWeightsError
from inpaint_core.weights.formats import (
    ConvertedWeights,
    WeightsFormat,
    fitted_weights,
    tensor_state,
)
from inpaint_core.weights.pickles import load_pickled

__all__ = ["FORMAT", "convert"]

_EXPECTS = "netG_streetview.pth of BoyuanJiang/context_encoder_pytorch (a torch.save file)"
#: Layer indices in ``main`` whose weights give the widths.
_FIRST_CONV, _BOTTLENECK_CONV, _LAST_DECONV = 0, 14, 29


def _state(path: Path) -> tuple[dict[str, Tensor], int | None]:
    """The generator's tensors by key (prefix ``module.`` dropped) and the ``epoch``."""
    data = load_pickled(path)
    if isinstance(data, Mapping) and isinstance(data.get("state_dict"), Mapping):
        epoch = data.get("epoch")
        data = data["state_dict"]
    else:
        epoch = None
    if not isinstance(data, Mapping) or not data:
        raise InvalidWeightsError(
            f"context-encoder-pytorch: {path} holds no state dict; expected {_EXPECTS}, "
            "{'epoch': int, 'state_dict': ...}"
        )
    tensors = tensor_state(data, f"context-encoder-pytorch: {path}", "a state dict of tensors")
    state = {key.removeprefix("module."): value for key, value in tensors.items()}
    return state, int(epoch) if isinstance(epoch, int | float) else None


def _width(state: Mapping[str, Tensor], index: int, axis: int, path: Path) -> int:
    key = f"main.{index}.weight"
    if key not in state or state[key].ndim != 4:
        raise InvalidWeightsError(
            f"context-encoder-pytorch: {path} has no 4-d {key!r}; is it a Context Encoder "
            f"generator ({_EXPECTS})?"
        )
    return int(state[key].shape[axis])


def convert(path: Path) -> ConvertedWeights:
    """Read a Context Encoder generator file as ``context-encoder`` weights.

    Args:
        path: the port's ``netG_*.pth``.

    Returns:
        :class:`ConvertedWeights` for ``context-encoder`` with ``architecture="pathak"``
        (input 128 x 128, widths from the file): the float32 state dict of ``generator``;
        ``source`` names the format, the file and its ``epoch``.

    Raises:
        InvalidWeightsError: unreadable, not a state dict, or keys or shapes that do not fit
            (the first mismatches are named).
    """
    from inpaint_core.api import get_method  # the method registry loads the plugins

    path = Path(path).expanduser()
    state, epoch = _state(path)
    method = get_method("context-encoder")
    config = method.config_class(
        architecture="pathak",
        input_size=128,
        prior="none",
        base_channels=_width(state, _FIRST_CONV, 0, path),
        bottleneck_channels=_width(state, _BOTTLENECK_CONV, 0, path),
        decoder_channels=_width(state, _LAST_DECONV, 0, path),
    )
    networks = method.build_networks(config)  # type: ignore[attr-defined]
    source: dict[str, Any] = {"format": "context-encoder-pytorch", "files": [path.name]}
    if epoch is not None:
        source["epoch"] = epoch
    what = f"context-encoder-pytorch ({path})"
    return fitted_weights("context-encoder", config,
                          {"generator": (networks.generator, state, what)}, source)


FORMAT = WeightsFormat(
    name="context-encoder-pytorch",
    method="context-encoder",
    expects=_EXPECTS,
    convert=convert,
    reference="BoyuanJiang/context_encoder_pytorch (Pathak et al.'s pathak22/context-encoder)",
)
