"""Fold BatchNorm into the convolution before it, for inference.

In eval mode a ``BatchNorm2d`` is a per-channel affine map ``y = s * x + t`` with
``s = gamma / sqrt(running_var + eps)`` and ``t = beta - running_mean * s``. When its input is
a convolution's output (or a sum of convolutions' outputs), the map goes into the
convolutions: their weights are scaled by ``s`` per output channel and ``t`` joins one bias.
The norm then becomes ``nn.Identity``, one pass over the feature map less per norm.

Folded (only where the data flow is known from the structure, never guessed):

- in any ``nn.Sequential``, a plain ``nn.Conv2d`` or ``nn.ConvTranspose2d`` directly followed
  by a ``BatchNorm2d`` (GLCIC, Context Encoder, pix2pix, LaMa's ``SpectralTransform.conv1``
  and its upsampling);
- LaMa's :class:`~inpaint_core.nn.layers.ffc.FourierUnit` (``conv_layer`` then ``bn``);
- LaMa's :class:`~inpaint_core.nn.layers.ffc.FfcBnAct`: ``bn_l`` follows ``convl2l + convg2l``,
  ``bn_g`` follows ``convl2g + convg2g`` whose last operation is the linear ``conv2``.

Not folded: ``InstanceNorm2d`` (EdgeConnect): it normalises with each image's own statistics,
which are known only at run time, so no constant goes into the weights; convolutions with a
weight parametrisation (spectral norm) or of a subclass (partial convolutions, whose output
is rescaled and masked after the convolution); BatchNorm in training mode or without running
statistics.
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from inpaint_core.nn.layers.ffc import FfcBnAct, FourierUnit

__all__ = ["fold_batch_norms"]

_Conv = nn.Conv2d | nn.ConvTranspose2d


def _affine(norm: nn.BatchNorm2d) -> tuple[Tensor, Tensor]:
    """The eval-mode map of ``norm`` as ``(scale, shift)``, each ``(C,)`` float32."""
    assert norm.running_mean is not None and norm.running_var is not None
    scale = torch.rsqrt(norm.running_var.float() + norm.eps)
    if norm.weight is not None:
        scale = scale * norm.weight.detach().float()
    shift = -norm.running_mean.float() * scale
    if norm.bias is not None:
        shift = shift + norm.bias.detach().float()
    return scale, shift


def _foldable_norm(module: nn.Module | None) -> bool:
    return (
        type(module) is nn.BatchNorm2d
        and not module.training
        and module.track_running_stats
        and module.running_mean is not None
    )


def _foldable_conv(module: nn.Module | None) -> bool:
    return (
        type(module) in (nn.Conv2d, nn.ConvTranspose2d)
        and not parametrize.is_parametrized(module)
        and not hasattr(module, "weight_orig")  # the hook-based spectral norm
    )


@torch.no_grad()
def _scale_conv(conv: _Conv, scale: Tensor, shift: Tensor | None) -> None:
    """Multiply ``conv``'s output channels by ``scale`` and add ``shift`` (None: no shift)."""
    weight = conv.weight
    scale = scale.to(weight.dtype)
    if isinstance(conv, nn.ConvTranspose2d):
        # weight (in, out / groups, kh, kw): output channel g * out/groups + j is [group g, :, j]
        groups, per_group = conv.groups, weight.shape[1]
        factors = scale.view(groups, 1, per_group).expand(groups, weight.shape[0] // groups,
                                                          per_group)
        weight.mul_(factors.reshape(weight.shape[0], per_group, 1, 1))
    else:
        weight.mul_(scale.view(-1, 1, 1, 1))
    bias = conv.bias
    if bias is not None:
        bias.mul_(scale)
    if shift is not None:
        if bias is None:
            conv.bias = nn.Parameter(shift.to(weight.dtype).clone(), requires_grad=False)
        else:
            bias.add_(shift.to(bias.dtype))


def _fold_into(convs: list[_Conv], norm: nn.BatchNorm2d) -> None:
    """Fold ``norm`` into the convolutions whose outputs are summed before it."""
    scale, shift = _affine(norm)
    for index, conv in enumerate(convs):
        _scale_conv(conv, scale.to(conv.weight.device), shift.to(conv.weight.device)
                    if index == 0 else None)


def _fold_sequential(sequence: nn.Sequential) -> int:
    folded = 0
    names = list(sequence._modules)
    for first, second in itertools.pairwise(names):
        conv, norm = sequence._modules[first], sequence._modules[second]
        if _foldable_conv(conv) and _foldable_norm(norm):
            _fold_into([conv], norm)  # type: ignore[list-item, arg-type]
            sequence._modules[second] = nn.Identity()
            folded += 1
    return folded


def _fold_fourier_unit(unit: FourierUnit) -> int:
    if _foldable_conv(unit.conv_layer) and _foldable_norm(unit.bn):
        _fold_into([unit.conv_layer], unit.bn)
        unit.bn = nn.Identity()  # type: ignore[assignment]
        return 1
    return 0


def _fold_ffc_bn_act(block: FfcBnAct) -> int:
    ffc = block.ffc
    spectral_out = ffc.convg2g.conv2 if ffc.convg2g is not None else None
    folded = 0
    for norm_name, parts in (("bn_l", (ffc.convl2l, ffc.convg2l)),
                             ("bn_g", (ffc.convl2g, spectral_out))):
        norm = getattr(block, norm_name)
        convs = [conv for conv in parts if conv is not None]
        if convs and _foldable_norm(norm) and all(_foldable_conv(conv) for conv in convs):
            _fold_into(convs, norm)
            setattr(block, norm_name, nn.Identity())
            folded += 1
    return folded


def fold_batch_norms(networks: nn.Module) -> int:
    """Fold every eval-mode BatchNorm that follows a convolution into it, in place.

    Args:
        networks: eval-mode modules (any device, float weights). Outputs after folding equal
            the outputs before up to float rounding (about 1e-6 relative in float32).

    Returns:
        How many norms were folded (each replaced by ``nn.Identity``).

    Raises:
        ValueError: ``networks`` is in training mode, where BatchNorm uses batch statistics.
    """
    if networks.training:
        raise ValueError(
            f"fold_batch_norms needs eval-mode networks, got {type(networks).__name__} in "
            "training mode; call .eval() first"
        )
    folded = 0
    for module in list(networks.modules()):
        if isinstance(module, nn.Sequential):
            folded += _fold_sequential(module)
        elif isinstance(module, FourierUnit):
            folded += _fold_fourier_unit(module)
        elif isinstance(module, FfcBnAct):
            folded += _fold_ffc_bn_act(module)
    return folded
