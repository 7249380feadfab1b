"""Reading the tensors of a TorchScript archive without loading it as code.

A TorchScript file (``torch.jit.save``) is a zip whose ``data.pkl`` pickles the traced modules
as ``__torch__.*`` objects holding their parameters and buffers as attributes, beside ``code/``
(TorchScript source) that this project never runs or reads. The archive is read with
:func:`~inpaint_core.weights.pickles.load_pickled`, which turns each module into an inert
:class:`~inpaint_core.weights.pickles.Placeholder`; walking their attributes gives the tensors
by dotted name. The formats ``lama-torchscript`` and ``mi-gan-torchscript`` read IOPaint's
files this way.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from inpaint_core.errors import InvalidWeightsError, MissingWeightsError

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["module_tensors", "read_archive_tensors"]


def module_tensors(root: Any) -> dict[str, Tensor]:
    """Every tensor held by a tree of TorchScript module placeholders, by dotted name.

    Args:
        root: what :func:`~inpaint_core.weights.pickles.load_pickled` returns for a
            TorchScript archive (a :class:`~inpaint_core.weights.pickles.Placeholder`).

    Returns:
        ``{"generator.model.1.ffc.convl2l.weight": tensor, ...}``: CPU tensors.
    """
    import torch

    from inpaint_core.weights.pickles import Placeholder

    found: dict[str, Tensor] = {}
    seen: set[int] = set()
    pending: list[tuple[str, Any]] = [("", root)]
    while pending:
        prefix, node = pending.pop()
        if isinstance(node, torch.Tensor):
            found[prefix.rstrip(".")] = node
        elif isinstance(node, Placeholder) and id(node) not in seen:
            seen.add(id(node))
            if isinstance(node.state, dict):
                pending.extend((f"{prefix}{k}.", v) for k, v in node.state.items())
    return found


def read_archive_tensors(path: Path, format_name: str, expects: str, otherwise: str
                         ) -> dict[str, Tensor]:
    """The tensors of the TorchScript archive ``path`` by dotted name (:func:`module_tensors`).

    Args:
        path: the ``.pt`` file.
        format_name: the format reading it, named in errors (``"lama-torchscript"``).
        expects: what the format expects, named when the file is missing.
        otherwise: what to use for a file that is no TorchScript archive, e.g.
            ``"for LaMa's own big-lama folder use format 'lama'"``.

    Raises:
        MissingWeightsError: ``path`` does not exist.
        InvalidWeightsError: ``path`` is not a TorchScript module archive.
    """
    from inpaint_core.weights.pickles import Placeholder, load_pickled

    path = Path(path)
    if not path.is_file():
        raise MissingWeightsError(
            f"{path} does not exist; format {format_name!r} expects {expects}"
        )
    root = load_pickled(path)
    if not isinstance(root, Placeholder) or not root.global_name.startswith("__torch__."):
        raise InvalidWeightsError(f"{path} is not a TorchScript module archive; {otherwise}")
    return module_tensors(root)
