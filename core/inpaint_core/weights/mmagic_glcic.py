"""Format ``mmagic-glcic``: OpenMMLab's Global&Local checkpoint -> ``glcic`` weights.

OpenMMLab (mmediting 0.x, now mmagic; Apache-2.0) published
``gl_256x256_8x12_places_20200619-52a040a8.pth``: one ``torch.save`` dict with ``meta`` and
``state_dict``, which holds the completion network (``generator.encoder.*``,
``generator.dilation_neck.*``, ``generator.decoder.*``: ``GLEncoderDecoder``) and the
global-local discriminators (``disc.global_disc.*``, ``disc.local_disc.*``, ``disc.fc.*``:
``GLDiscs``). It is read by :mod:`inpaint_core.weights.mmagic` with the restricted loader, so
no code from the file runs.

The generator's keys are mmagic's module names (mmagic kept mmediting 0.x's), which ``glcic``
with ``architecture="mmagic"`` (:mod:`inpaint_core.nn.layers.glcic_mmagic`) keeps, so no key is
renamed; the widths are fixed in the reference, and :func:`match_state` checks every shape.
The discriminators are not needed to inpaint: their key names are checked (every
``GLDiscs`` key, whatever its widths) so that another OpenMMLab model's file is refused, and
their tensors are not read further. Keys under any other prefix are refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from inpaint_core.errors import InvalidWeightsError
from inpaint_core.weights.formats import ConvertedWeights, WeightsFormat, fitted_weights
from inpaint_core.weights.mmagic import network_state, read_checkpoint, source_of

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["DISCRIMINATOR_KEYS", "FORMAT", "convert"]

NAME = "mmagic-glcic"
_EXPECTS = ("OpenMMLab's Global&Local checkpoint (.pth), e.g. "
            "gl_256x256_8x12_places_20200619-52a040a8.pth")
_SHOWN = 5
_NORM_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _discriminator_keys() -> frozenset[str]:
    """Every ``state_dict`` key of ``GLDiscs`` (6-conv global and 5-conv local
    ``MultiLayerDiscriminator`` with BatchNorm and a fully connected layer, then ``fc``)."""
    keys = {"disc.fc.weight", "disc.fc.bias"}
    for branch, convs in (("global_disc", 6), ("local_disc", 5)):
        for index in range(1, convs + 1):
            keys.add(f"disc.{branch}.conv{index}.conv.weight")
            keys.update(f"disc.{branch}.conv{index}.bn.{name}" for name in _NORM_KEYS)
        keys.update({f"disc.{branch}.fc.linear.weight", f"disc.{branch}.fc.linear.bias"})
    return frozenset(keys)


#: The discriminator keys the published file holds (names only; widths are not checked).
DISCRIMINATOR_KEYS = _discriminator_keys()


def _named(keys: list[str]) -> str:
    more = f" and {len(keys) - _SHOWN} more" if len(keys) > _SHOWN else ""
    return ", ".join(keys[:_SHOWN]) + more


def _check_layout(state: dict[str, Tensor], path: Path) -> None:
    """Raise unless ``state`` holds exactly ``generator.*`` and ``GLDiscs``' ``disc.*`` keys."""
    others = sorted(k for k in state if not k.startswith(("generator.", "disc.")))
    if others:
        raise InvalidWeightsError(
            f"{path}: keys outside 'generator.' and 'disc.': {_named(others)}; format {NAME!r} "
            f"expects {_EXPECTS}"
        )
    found = {k for k in state if k.startswith("disc.")}
    missing = sorted(DISCRIMINATOR_KEYS - found)
    unexpected = sorted(found - DISCRIMINATOR_KEYS)
    if missing or unexpected:
        parts = [f"missing keys: {_named(missing)}"] if missing else []
        parts += [f"unexpected keys: {_named(unexpected)}"] if unexpected else []
        raise InvalidWeightsError(
            f"{NAME} discriminator ({path}) is not Global&Local's GLDiscs: {'; '.join(parts)}; "
            f"the format expects {_EXPECTS}"
        )


def convert(path: Path) -> ConvertedWeights:
    """Read OpenMMLab's Global&Local file; see the module docstring.

    Args:
        path: the ``.pth`` file as published.

    Returns:
        ``glcic`` weights with ``architecture="mmagic"``: ``{"completion": state}`` (float32
        tensors and BatchNorm's int64 ``num_batches_tracked``); ``source`` names the format,
        the file, and the iteration / epoch / version ``meta`` gives.

    Raises:
        InvalidWeightsError: not an OpenMMLab checkpoint, no ``generator.*`` tensors, keys
            outside ``generator.`` and ``disc.``, discriminator keys that are not ``GLDiscs``',
            or generator tensors that do not fit (the first missing / unexpected / mis-shaped
            keys are named).
    """
    from inpaint_core.api import get_method  # the method registry loads the plugins

    path = Path(path).expanduser()
    state, meta = read_checkpoint(path)
    generator = network_state(state, "generator.", path)
    _check_layout(state, path)
    method = get_method("glcic")
    config = method.config_class(architecture="mmagic")
    networks = method.build_networks(config)  # type: ignore[attr-defined]
    fits = {"completion": (networks.completion, generator, f"{NAME} generator ({path})")}
    return fitted_weights("glcic", config, fits, source_of(meta, path, NAME))


FORMAT = WeightsFormat(
    name=NAME,
    method="glcic",
    expects=_EXPECTS,
    convert=convert,
    reference="open-mmlab/mmagic (mmediting 0.x) GLEncoderDecoder, GLInpaintor",
)
