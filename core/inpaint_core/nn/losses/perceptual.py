"""Perceptual and style losses on frozen VGG-19 activations (DFNet / the edge GAN, stage 2).

``L_perc = sum_j mean|phi_j(I) - phi_j(I_hat)|`` and ``L_style = sum_j mean|G_j(I) - G_j(I_hat)|``
with the Gram matrix ``G_j = F F^T / (C_j H_j W_j)``. The L1 norms are averaged per element, as
EdgeConnect does, so the paper's weights (``a_p = 0.1``, ``a_s = 250``) keep their meaning.

No VGG-19 weights ship with napari-inpaint: a user provides the torchvision ``vgg19`` state
dict (``vgg19-dcbb9e9d.pth``) or a safetensors copy of it, through ``INPAINT_VGG19_WEIGHTS`` or
``--vgg-weights``. A randomly initialised VGG is never used silently.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inpaint_core.errors import (
    InvalidInputError,
    InvalidWeightsError,
    MissingWeightsError,
    ParameterError,
)

__all__ = [
    "DEFAULT_LAYERS",
    "VGG19_CONV_INDICES",
    "VGG19_LAYER_INDICES",
    "VGG19_WEIGHTS_ENV",
    "InvalidWeightsError",
    "MissingWeightsError",
    "PerceptualStyleLoss",
    "Vgg19Features",
    "gram_matrix",
    "load_vgg19_weights",
    "perceptual_loss",
    "style_loss",
    "vgg_weights_hint",
]

logger = logging.getLogger(__name__)

VGG19_WEIGHTS_ENV = "INPAINT_VGG19_WEIGHTS"
DEFAULT_LAYERS: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1")
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
# torchvision's VGG-19 configuration "E": output channels per conv, "M" = 2x2 max pool.
_VGG19_CONFIG: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
    512, 512, 512, 512, "M", 512, 512, 512, 512, "M",
)


def _layout() -> tuple[dict[int, tuple[int, int]], dict[str, int]]:
    """Conv index -> (in, out) channels, and relu/pool name -> index in ``features``."""
    convs: dict[int, tuple[int, int]] = {}
    names: dict[str, int] = {}
    index, block, position, channels = 0, 1, 1, 3
    for item in _VGG19_CONFIG:
        if item == "M":
            names[f"pool{block}"] = index
            index, block, position = index + 1, block + 1, 1
            continue
        convs[index] = (channels, int(item))
        names[f"relu{block}_{position}"] = index + 1
        index, position, channels = index + 2, position + 1, int(item)
    return convs, names


_CONV_CHANNELS, VGG19_LAYER_INDICES = _layout()
#: Indices of the convolutions in torchvision's ``vgg19().features`` (0, 2, 5, 7, 10, ...).
VGG19_CONV_INDICES: tuple[int, ...] = tuple(_CONV_CHANNELS)

def vgg_weights_hint(fallback: str = "discriminator-features") -> str:
    """How to provide VGG-19 weights, or train without them (``--option
    texture_loss=FALLBACK``, the method's documented fallback), for error messages."""
    return (
        f"set {VGG19_WEIGHTS_ENV}=/path/to/vgg19.pth or pass --vgg-weights, for example the "
        "torchvision vgg19 state dict 'vgg19-dcbb9e9d.pth' or a .safetensors copy of it; or "
        f"train without VGG using the documented fallback '--option texture_loss={fallback}'"
    )


_HOW_TO_PROVIDE = vgg_weights_hint()


def _expected_shapes(last_index: int) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for index, (c_in, c_out) in _CONV_CHANNELS.items():
        if index <= last_index:
            shapes[f"features.{index}.weight"] = (c_out, c_in, 3, 3)
            shapes[f"features.{index}.bias"] = (c_out,)
    return shapes


def _check_layers(layers: Sequence[str]) -> tuple[str, ...]:
    layers = tuple(layers)
    unknown = [name for name in layers if name not in VGG19_LAYER_INDICES]
    if not layers or unknown:
        valid = ", ".join(VGG19_LAYER_INDICES)
        raise ParameterError(f"unknown or no VGG-19 layers {list(layers)!r}; valid names: {valid}")
    return layers


def _read_file(path: Path) -> Mapping[str, object]:
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except ImportError as e:
        raise InvalidWeightsError(
            f"reading {path} needs the 'safetensors' package: pip install safetensors"
        ) from e
    except (pickle.UnpicklingError, RuntimeError, OSError, ValueError, EOFError) as e:
        raise InvalidWeightsError(
            f"cannot read VGG-19 weights from {path}: {e}. Expected a state dict of tensors "
            f"(read with weights_only=True, so pickled objects are refused); {_HOW_TO_PROVIDE}"
        ) from e
    if isinstance(loaded, Mapping) and isinstance(loaded.get("state_dict"), Mapping):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, Mapping):
        raise InvalidWeightsError(
            f"{path} holds a {type(loaded).__name__}, not a state dict; {_HOW_TO_PROVIDE}"
        )
    return loaded


def load_vgg19_weights(
    path: str | Path | None = None, layers: Sequence[str] = DEFAULT_LAYERS
) -> dict[str, Tensor]:
    """Read and check the VGG-19 convolution weights that ``layers`` need.

    Args:
        path: a ``.safetensors`` file, or a torch file holding a state dict (read with
            ``weights_only=True``). None reads the path from ``INPAINT_VGG19_WEIGHTS``.
            Keys may carry torchvision's ``features.`` prefix or not; ``classifier.*`` and
            convolutions deeper than ``layers`` need are ignored.
        layers: the activations that will be used; decides which convolutions are required.

    Returns:
        ``{"features.{i}.weight" | "features.{i}.bias": float32 tensor}``, the keys of
        :class:`Vgg19Features`' state dict.

    Raises:
        MissingWeightsError: no path given and the variable unset, or the file does not exist.
        InvalidWeightsError: an unreadable file, a missing key or a wrong shape (the first one,
            with expected and found shapes).
    """
    layers = _check_layers(layers)
    if path is None or str(path) == "":
        path = os.environ.get(VGG19_WEIGHTS_ENV) or None
        if path is None:
            raise MissingWeightsError(f"no VGG-19 weights given: {_HOW_TO_PROVIDE}")
    path = Path(path).expanduser()
    if not path.is_file():
        raise MissingWeightsError(f"VGG-19 weights file {str(path)!r} not found: {_HOW_TO_PROVIDE}")
    raw = _read_file(path)
    found: dict[str, object] = {}
    for key, value in raw.items():
        match = re.fullmatch(r"(?:features\.)?(\d+\.(?:weight|bias))", str(key))
        if match:
            found.setdefault(f"features.{match.group(1)}", value)
    last = max(VGG19_LAYER_INDICES[name] for name in layers)
    weights: dict[str, Tensor] = {}
    for key, shape in _expected_shapes(last).items():
        value = found.get(key)
        if value is None:
            raise InvalidWeightsError(
                f"{path}: missing key {key!r} (expected shape {shape}); {_HOW_TO_PROVIDE}"
            )
        if not isinstance(value, Tensor) or tuple(value.shape) != shape:
            got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise InvalidWeightsError(
                f"{path}: key {key!r} has the wrong shape: expected {shape}, found {got}"
            )
        weights[key] = value.detach().to(torch.float32)
    logger.debug("loaded %d VGG-19 tensors from %s", len(weights), path)
    return weights


class Vgg19Features(nn.Module):
    """Frozen VGG-19 convolution stack returning named ReLU activations.

    The layers follow torchvision's ``vgg19().features`` order and indices exactly (convs at
    0, 2, 5, 7, 10, ...; ``relu1_1`` = 1, ``relu2_1`` = 6, ``relu3_1`` = 11), so torchvision's
    ``features.{i}.weight``/``bias`` keys load unchanged. The stack stops after the deepest
    requested layer.

    The SPEC's "relu1, relu2, relu3" are read as ``relu1_1``, ``relu2_1``, ``relu3_1``: the
    first ReLU of each block, as EdgeConnect's perceptual and style losses use.

    Args:
        layers: activation names, ``relu{block}_{k}`` or ``pool{block}``.
        weights: a state dict (e.g. from :func:`load_vgg19_weights`); None leaves the random
            initialisation, which is only good for tests (use :meth:`pretrained`).

    Input: ``(B, 3, H, W)`` float images in [0, 1]; ImageNet normalisation is applied inside.
    Output: ``{name: (B, C_j, H_j, W_j)}`` for each requested layer.
    """

    def __init__(
        self,
        layers: Sequence[str] = DEFAULT_LAYERS,
        weights: Mapping[str, Tensor] | None = None,
    ) -> None:
        super().__init__()
        self.layers = _check_layers(layers)
        self.layer_indices = {name: VGG19_LAYER_INDICES[name] for name in self.layers}
        last = max(self.layer_indices.values())
        modules: list[nn.Module] = []
        channels = 3
        for item in _VGG19_CONFIG:
            if item == "M":
                modules.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                modules += [nn.Conv2d(channels, int(item), 3, padding=1), nn.ReLU(inplace=False)]
                channels = int(item)
        self.features = nn.Sequential(*modules[: last + 1])
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), False)
        if weights is not None:
            self.load_state_dict(dict(weights))
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def pretrained(
        cls, path: str | Path | None = None, layers: Sequence[str] = DEFAULT_LAYERS
    ) -> Vgg19Features:
        """Build with weights from :func:`load_vgg19_weights` (``path`` or the env var)."""
        return cls(layers, load_vgg19_weights(path, layers))

    def train(self, mode: bool = True) -> Vgg19Features:
        """Stay in eval mode: the network is a fixed feature extractor."""
        return super().train(False)

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        if images.dim() != 4 or images.shape[1] != 3:
            raise InvalidInputError(
                f"VGG-19 features need (B, 3, H, W) images in [0, 1], got shape "
                f"{tuple(images.shape)}"
            )
        wanted = {index: name for name, index in self.layer_indices.items()}
        x = (images - self.mean) / self.std
        outputs: dict[str, Tensor] = {}
        for index, module in enumerate(self.features):
            x = module(x)
            if index in wanted:
                outputs[wanted[index]] = x
        return outputs


def gram_matrix(features: Tensor) -> Tensor:
    """``(B, C, H, W)`` activations -> ``(B, C, C)`` Gram matrices ``F F^T / (C H W)``."""
    if features.dim() != 4:
        raise InvalidInputError(
            f"gram_matrix needs (B, C, H, W) features, got shape {tuple(features.shape)}"
        )
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def _paired(
    features_real: Mapping[str, Tensor], features_fake: Mapping[str, Tensor]
) -> list[tuple[str, Tensor, Tensor]]:
    if set(features_real) != set(features_fake) or not features_real:
        raise InvalidInputError(
            f"real and fake features must name the same non-empty layers, got "
            f"{sorted(features_real)} and {sorted(features_fake)}"
        )
    pairs = []
    for name, fake in features_fake.items():
        real = features_real[name]
        if real.shape != fake.shape:
            raise InvalidInputError(
                f"layer {name!r}: real shape {tuple(real.shape)} does not match fake "
                f"{tuple(fake.shape)}"
            )
        pairs.append((name, real.detach(), fake))
    return pairs


def perceptual_loss(
    features_real: Mapping[str, Tensor], features_fake: Mapping[str, Tensor]
) -> tuple[Tensor, dict[str, float]]:
    """``sum_j mean|phi_j(I) - phi_j(I_hat)|`` over the layers of two feature dicts.

    Returns ``(loss, {"perceptual", "perceptual_<layer>" ...})``; real features are detached.
    """
    total, metrics = None, {}
    for name, real, fake in _paired(features_real, features_fake):
        term = F.l1_loss(fake, real)
        metrics[f"perceptual_{name}"] = float(term.detach())
        total = term if total is None else total + term
    metrics["perceptual"] = float(total.detach())
    return total, metrics


def style_loss(
    features_real: Mapping[str, Tensor], features_fake: Mapping[str, Tensor]
) -> tuple[Tensor, dict[str, float]]:
    """``sum_j mean|G_j(I) - G_j(I_hat)|`` with :func:`gram_matrix` on each layer.

    Returns ``(loss, {"style", "style_<layer>" ...})``; real features are detached.
    """
    total, metrics = None, {}
    for name, real, fake in _paired(features_real, features_fake):
        term = F.l1_loss(gram_matrix(fake), gram_matrix(real))
        metrics[f"style_{name}"] = float(term.detach())
        total = term if total is None else total + term
    metrics["style"] = float(total.detach())
    return total, metrics


class PerceptualStyleLoss(nn.Module):
    """Perceptual and style losses of generated images against real ones, on frozen VGG-19.

    Args:
        features: a built :class:`Vgg19Features`; None loads pretrained weights from
            ``weights_path`` or ``INPAINT_VGG19_WEIGHTS`` (raising
            :class:`MissingWeightsError` when neither is set).
        weights_path: the weights file, used when ``features`` is None.
        layers: the activations, used when ``features`` is None.
    """

    def __init__(
        self,
        features: Vgg19Features | None = None,
        weights_path: str | Path | None = None,
        layers: Sequence[str] = DEFAULT_LAYERS,
    ) -> None:
        super().__init__()
        self.vgg = (
            features if features is not None else Vgg19Features.pretrained(weights_path, layers)
        )

    def forward(self, real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor, dict[str, float]]:
        """``real``, ``fake``: ``(B, 3, H, W)`` in [0, 1] -> ``(perceptual, style, metrics)``."""
        if real.shape != fake.shape:
            raise InvalidInputError(
                f"real shape {tuple(real.shape)} does not match fake {tuple(fake.shape)}"
            )
        with torch.no_grad():
            features_real = self.vgg(real)
        features_fake = self.vgg(fake)
        perceptual, metrics = perceptual_loss(features_real, features_fake)
        style, style_metrics = style_loss(features_real, features_fake)
        return perceptual, style, {**metrics, **style_metrics}
