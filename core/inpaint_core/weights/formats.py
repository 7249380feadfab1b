"""Formats of published checkpoints and their converters to this project's weights.

A :class:`WeightsFormat` names a layout in which an author published a checkpoint (a file or a
folder), the registered method whose networks it fills, and a ``convert`` function that reads
the layout *without running any code from it* (see :mod:`inpaint_core.weights.pickles`) and
returns :class:`ConvertedWeights`: the method's architecture config and one state dict per
inference network. :func:`inpaint_core.weights.import_weights` writes that as a
``.safetensors`` checkpoint with its ``.json`` sidecar, which every learned method loads.

The built-in formats live one per module in this package and are found by name through
:func:`get_format`; each module defines ``FORMAT``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inpaint_core.errors import InvalidWeightsError, ParameterError

if TYPE_CHECKING:
    from torch import Tensor, nn

__all__ = [
    "ConvertedWeights",
    "WeightsFormat",
    "fitted_weights",
    "format_method",
    "format_names",
    "get_format",
    "match_state",
    "tensor_state",
]

#: Format name -> the module that defines its ``FORMAT`` (imported on first use: torch).
_BUILTIN: dict[str, tuple[str, str]] = {
    "context-encoder-pytorch": ("inpaint_core.weights.context_encoder_pytorch", "context-encoder"),
    "edge-connect": ("inpaint_core.weights.edge_connect", "edge-gan"),
    "lama": ("inpaint_core.weights.lama", "lama"),
    "lama-torchscript": ("inpaint_core.weights.lama_torchscript", "lama"),
    "mmagic-glcic": ("inpaint_core.weights.mmagic_glcic", "glcic"),
    "mmagic-pconv": ("inpaint_core.weights.mmagic_pconv", "partial-conv-unet"),
    "mmagic-deepfillv2": ("inpaint_core.weights.mmagic_deepfillv2", "deepfill-v2"),
    "mi-gan": ("inpaint_core.weights.mi_gan", "mi-gan"),
    "mi-gan-torchscript": ("inpaint_core.weights.mi_gan_torchscript", "mi-gan"),
}
#: How many mismatching keys an error names before it says "and N more".
_SHOWN = 5


@dataclass(frozen=True)
class ConvertedWeights:
    """A published checkpoint in this project's terms.

    Attributes:
        method: the registered method that runs these weights, e.g. ``"lama"``.
        config: the method's architecture config as a JSON-ready dict
            (``config_to_dict(method.config_class(...))``).
        networks: one state dict per child of ``method.build_networks(config)``, by child name.
        source: what was read, for the sidecar: the format, the files, the iteration or epoch.
    """

    method: str
    config: dict[str, Any]
    networks: dict[str, dict[str, Tensor]]
    source: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WeightsFormat:
    """A published checkpoint layout and its converter.

    Attributes:
        name: the format's name on the command line, e.g. ``"edge-connect"``.
        method: the registered method whose networks it fills.
        expects: what ``PATH`` must be, said to the user, e.g. ``"a folder holding
            EdgeModel_gen.pth and InpaintingModel_gen.pth"``.
        convert: reads ``PATH`` and returns the weights; raises
            :class:`~inpaint_core.errors.InvalidWeightsError` naming what is wrong.
        reference: the reference implementation it is proven equal to.
    """

    name: str
    method: str
    expects: str
    convert: Callable[[Path], ConvertedWeights]
    reference: str = ""


def format_names() -> list[str]:
    """The names of the known formats, sorted."""
    return sorted(_BUILTIN)


def _builtin(name: str) -> tuple[str, str]:
    """``(module, method)`` of format ``name``; an unknown name raises listing the valid ones."""
    if name not in _BUILTIN:
        raise ParameterError(f"unknown weights format {name!r}; valid: {', '.join(format_names())}")
    return _BUILTIN[name]


def get_format(name: str) -> WeightsFormat:
    """The format called ``name``; an unknown name raises listing the valid ones."""
    return importlib.import_module(_builtin(name)[0]).FORMAT


def format_method(name: str) -> str:
    """The method that format ``name`` fills, without importing its converter (torch)."""
    return _builtin(name)[1]


def match_state(network: nn.Module, state: Mapping[str, Tensor], what: str) -> dict[str, Tensor]:
    """Check that ``state`` fits ``network`` exactly; return it as a plain dict of float32.

    Args:
        network: the freshly built network the state is for.
        state: parameter and buffer tensors by ``state_dict`` key.
        what: names the network and format in the error, e.g.
            ``"edge-connect G1 (EdgeModel_gen.pth)"``.

    Raises:
        InvalidWeightsError: keys missing from ``state``, keys ``network`` does not have, or
            tensors of another shape; the first few of each are named with the format.
    """
    expected = network.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    shapes = [
        f"{key} {tuple(state[key].shape)} (expected {tuple(value.shape)})"
        for key, value in expected.items()
        if key in state and tuple(state[key].shape) != tuple(value.shape)
    ]
    problems = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", shapes)):
        if items:
            more = f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else ""
            problems.append(f"{label} keys: {', '.join(items[:_SHOWN])}{more}")
    if problems:
        raise InvalidWeightsError(f"{what} does not fit: {'; '.join(problems)}")
    return {  # this project's weights are float32, whatever the publisher stored
        key: state[key].detach().float() if state[key].is_floating_point() else state[key]
        for key in expected
    }


def tensor_state(data: object, where: str, expected: str) -> dict[str, Tensor]:
    """``data`` as a state dict: every value a tensor, every key a ``str``.

    Args:
        data: what a checkpoint file holds (read with the restricted loader).
        where: names the file (and the entry) in errors, e.g. ``"migan.pt"``.
        expected: what the format expects there, e.g. ``"a MI-GAN state dict"``.

    Raises:
        InvalidWeightsError: ``data`` is not a mapping (its type is named), or an entry is not
            a tensor (the first such key and its type are named).
    """
    import torch

    if not isinstance(data, Mapping):
        raise InvalidWeightsError(
            f"{where} is not {expected}: expected a dict of tensors, found a "
            f"{type(data).__name__}"
        )
    for key, value in data.items():
        if not isinstance(value, torch.Tensor):
            raise InvalidWeightsError(
                f"{where} is not {expected}: entry {key!r} is a {type(value).__name__}, "
                "not a tensor"
            )
    return {str(key): value for key, value in data.items()}


def fitted_weights(method: str, config: Any, states: Mapping[str, tuple[nn.Module,
                   Mapping[str, Tensor], str]], source: dict[str, Any]) -> ConvertedWeights:
    """:class:`ConvertedWeights` of ``method`` whose every state is checked by
    :func:`match_state` against its freshly built network.

    Args:
        method: the registered method, e.g. ``"mi-gan"``.
        config: the method's architecture config dataclass (stored as a JSON-ready dict).
        states: by network name (a child of ``method.build_networks(config)``):
            ``(network, state, what)``, ``what`` naming the network and file in errors.
        source: the sidecar's record of what was read.

    Raises:
        InvalidWeightsError: a state does not fit its network (see :func:`match_state`).
    """
    from inpaint_core.configs import config_to_dict

    networks = {name: match_state(network, state, what)
                for name, (network, state, what) in states.items()}
    return ConvertedWeights(method=method, config=config_to_dict(config), networks=networks,
                            source=source)
