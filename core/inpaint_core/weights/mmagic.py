"""Reading OpenMMLab (mmediting / mmagic) inpainting checkpoints, shared by their formats.

OpenMMLab publishes a model as one ``torch.save`` file: a dict with ``state_dict`` (every
network of the model, keys prefixed by the network's attribute: ``generator.``, ``disc.`` ...)
and ``meta`` (the mmcv/mmediting versions, the config text, the epoch and iteration). The file
may pickle objects beyond tensors (an ``OrderedDict``, numpy scalars in ``meta``), so it is
read with :func:`~inpaint_core.weights.pickles.load_pickled`, which runs no code from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inpaint_core.errors import InvalidWeightsError
from inpaint_core.weights.pickles import load_pickled

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["network_state", "prefixes", "read_checkpoint", "require_prefix", "source_of"]


def read_checkpoint(path: str | Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """The ``state_dict`` and ``meta`` of an OpenMMLab checkpoint file.

    Args:
        path: the ``.pth`` file as OpenMMLab publishes it.

    Returns:
        ``(state, meta)``: every tensor by its full key (``generator.…``, ``disc.…``), and
        the ``meta`` dict (empty when the file has none; placeholders stand for any object
        that is not a plain value).

    Raises:
        InvalidWeightsError: not a torch file, or not a dict with a ``state_dict`` of tensors.
    """
    from inpaint_core.weights.formats import tensor_state

    path = Path(path)
    payload = load_pickled(path)
    if not isinstance(payload, Mapping) or "state_dict" not in payload:
        found = sorted(map(str, payload)) if isinstance(payload, Mapping) else type(payload)
        raise InvalidWeightsError(
            f"{path} is not an OpenMMLab checkpoint: expected a dict with 'state_dict' and "
            f"'meta', found {found}"
        )
    state = tensor_state(payload["state_dict"], f"{path}: 'state_dict'", "a dict of tensors")
    meta = payload.get("meta")
    return state, dict(meta) if isinstance(meta, Mapping) else {}


def prefixes(state: Mapping[str, Tensor]) -> list[str]:
    """The networks a ``state_dict`` holds: its keys' first parts, e.g. ``["disc.",
    "generator."]``, sorted."""
    return sorted({key.split(".", 1)[0] + "." for key in state})


def require_prefix(state: Mapping[str, Tensor], prefix: str, path: str | Path,
                   format_name: str, expects: str) -> None:
    """Refuse a checkpoint with no tensor under ``prefix`` (a network the layout must hold,
    e.g. the discriminator ``"disc."``, even where converting does not read it).

    Raises:
        InvalidWeightsError: no key starts with ``prefix``; the prefixes found are named.
    """
    if not any(key.startswith(prefix) for key in state):
        raise InvalidWeightsError(
            f"{path} has no {prefix!r} tensors (found {', '.join(prefixes(state))}); "
            f"format {format_name!r} expects {expects}"
        )


def network_state(state: Mapping[str, Tensor], prefix: str, path: str | Path) -> dict[str, Tensor]:
    """The tensors under ``prefix`` (e.g. ``"generator."``), with the prefix removed.

    Raises:
        InvalidWeightsError: no key starts with ``prefix``; the error names the prefixes found.
    """
    found = {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}
    if not found:
        raise InvalidWeightsError(
            f"{path} has no {prefix!r} tensors; its state_dict holds {', '.join(prefixes(state))}"
        )
    return found


def source_of(meta: Mapping[str, Any], path: str | Path, format_name: str) -> dict[str, Any]:
    """The sidecar's ``source`` record: format, file, and the iteration/epoch ``meta`` gives."""
    source: dict[str, Any] = {"format": format_name, "files": [Path(path).name]}
    for key in ("iter", "epoch", "mmedit_version", "mmagic_version"):
        value = meta.get(key)
        if isinstance(value, (int, str)):
            source[key] = value
    return source
