"""GLCIC's context discriminator: a global and a local branch joined into one logit.

Iizuka, Simo-Serra, Ishikawa, "Globally and Locally Consistent Image Completion", SIGGRAPH
2017, table 2. Each branch is a stack of 5x5 stride-2 convolutions (each + BatchNorm + ReLU)
whose widths double from ``base_channels`` up to ``8 * base_channels``, stopping once the map is
4 x 4 or smaller, then a fully connected layer (+ ReLU) to a ``features``-long vector (1024).
The **global** branch judges the whole image (256 x 256 in the paper: 6 convs), the **local**
branch a patch centred on the hole (128 x 128: 5 convs). The two vectors are concatenated and a
last fully connected layer maps them to one logit; no sigmoid (the losses in
:mod:`inpaint_core.nn.losses.adversarial` take logits).

The fully connected layers fix the input sizes: ``global_size`` and ``local_size`` in the
config; any other size raises :class:`~inpaint_core.errors.InvalidInputError` naming both shapes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from inpaint_core.errors import InvalidInputError
from inpaint_core.nn.layers.blocks import Norm, make_norm, parse_enum

__all__ = ["GlobalLocalDiscriminator", "GlobalLocalDiscriminatorConfig", "branch_sides"]

#: Channels stop doubling at this multiple of ``base_channels`` (512 for 64, the paper).
MAX_WIDTH_MULTIPLIER = 8
#: The branches downsample until the feature map's side is at most this (4 x 4 in the paper).
FINAL_SIDE = 4
#: Smallest input side: at least one stride-2 conv per branch.
MIN_SIDE = 2 * FINAL_SIDE
KERNEL_SIZE = 5
STRIDE = 2
PADDING = 2


@dataclass(frozen=True)
class GlobalLocalDiscriminatorConfig:
    """Architecture of :class:`GlobalLocalDiscriminator`.

    Attributes:
        global_size: side of the square whole image the global branch takes (256 paper).
        local_size: side of the square hole patch the local branch takes (128 paper).
        in_channels: channels of both inputs (3 for RGB).
        base_channels: width of each branch's first conv (64 paper).
        features: length of each branch's output vector (1024 paper).
        norm: a :class:`~inpaint_core.nn.layers.blocks.Norm` after every conv (``batch`` paper).
    """

    global_size: int = 256
    local_size: int = 128
    in_channels: int = 3
    base_channels: int = 64
    features: int = 1024
    norm: Norm = Norm.BATCH

    def __post_init__(self) -> None:
        object.__setattr__(self, "norm", parse_enum(Norm, self.norm, "norm"))
        for name in ("in_channels", "base_channels", "features"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise InvalidInputError(f"{name}={value!r} must be an integer >= 1")
        for name in ("global_size", "local_size"):
            value = getattr(self, name)
            if not _is_int(value) or value < MIN_SIDE:
                raise InvalidInputError(f"{name}={value!r} must be an integer >= {MIN_SIDE}")

    def widths(self, size: int) -> list[int]:
        """Output channels of each conv of the branch taking ``size`` x ``size`` inputs."""
        cap = MAX_WIDTH_MULTIPLIER * self.base_channels
        return [min(self.base_channels * 2**i, cap) for i in range(len(branch_sides(size)))]


def branch_sides(size: int) -> list[int]:
    """Feature-map sides after each stride-2 conv of a branch on ``size`` x ``size`` inputs.

    A 5x5 conv with stride 2 and padding 2 maps a side ``s`` to ``ceil(s / 2)``; convs are added
    until the side is at most :data:`FINAL_SIDE`. 256 -> ``[128, 64, 32, 16, 8, 4]`` (6 convs,
    the paper's global branch), 128 -> 5 convs (its local branch), 32 -> 3 convs.
    """
    sides = []
    side = size
    while side > FINAL_SIDE or not sides:
        side = (side + PADDING * 2 - KERNEL_SIZE) // STRIDE + 1
        sides.append(side)
    return sides


class _Branch(nn.Module):
    """5x5 stride-2 convs (+ norm + ReLU) then flatten, fully connected, ReLU."""

    def __init__(self, config: GlobalLocalDiscriminatorConfig, size: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = config.in_channels
        widths = config.widths(size)
        for width in widths:
            # A conv followed by a norm has no bias: the norm's shift replaces it.
            bias = config.norm is Norm.NONE
            layers.append(nn.Conv2d(in_channels, width, KERNEL_SIZE, STRIDE, PADDING, bias=bias))
            layers.append(make_norm(config.norm, width))
            layers.append(nn.ReLU(inplace=True))
            in_channels = width
        self.convs = nn.Sequential(*layers)
        final = branch_sides(size)[-1]
        self.fc = nn.Linear(widths[-1] * final * final, config.features)

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(self.fc(self.convs(x).flatten(1)))


class GlobalLocalDiscriminator(nn.Module):
    """GLCIC's context discriminator; see the module docstring.

    Children: ``global_branch``, ``local_branch`` (each ``convs`` then ``fc``) and ``head``,
    the ``Linear(2 * features, 1)`` on the concatenated branch vectors.
    """

    def __init__(self, config: GlobalLocalDiscriminatorConfig) -> None:
        super().__init__()
        self.config = config
        self.global_branch = _Branch(config, config.global_size)
        self.local_branch = _Branch(config, config.local_size)
        self.head = nn.Linear(2 * config.features, 1)

    def strided_convs(self, branch: str) -> list[nn.Conv2d]:
        """The stride-2 convolutions of ``"global"`` or ``"local"``, first to last."""
        module = self.global_branch if branch == "global" else self.local_branch
        return [layer for layer in module.convs if isinstance(layer, nn.Conv2d)]

    def forward(self, images: Tensor, patches: Tensor) -> Tensor:
        """Judge whole images and their hole patches together.

        Args:
            images: float ``(B, in_channels, global_size, global_size)``, typically in [0, 1].
            patches: float ``(B, in_channels, local_size, local_size)``, the patch of each
                image centred on its hole (:func:`~inpaint_core.training.holes.crop_batch`).

        Returns:
            Raw logits ``(B, 1)`` (no sigmoid): high means real.

        Raises:
            InvalidInputError: a shape other than the expected one, or different batch sizes.
        """
        c = self.config
        for name, x, side in (
            ("images", images, c.global_size),
            ("patches", patches, c.local_size),
        ):
            expected = (c.in_channels, side, side)
            if x.ndim != 4 or tuple(x.shape[1:]) != expected:
                raise InvalidInputError(
                    f"global-local discriminator: {name} shape {tuple(x.shape)} is not "
                    f"(B, {c.in_channels}, {side}, {side}); its fully connected layers need "
                    f"exactly {side} x {side} inputs"
                )
        if images.shape[0] != patches.shape[0]:
            raise InvalidInputError(
                f"global-local discriminator: {images.shape[0]} images but "
                f"{patches.shape[0]} patches; give one patch per image"
            )
        joined = torch.cat([self.global_branch(images), self.local_branch(patches)], dim=1)
        return self.head(joined)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
