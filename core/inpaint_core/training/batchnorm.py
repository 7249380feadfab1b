"""Re-estimate batch-norm running statistics of trained networks before they are shipped.

BatchNorm layers keep exponential running averages (momentum 0.1) of the last few batches'
statistics, and inference (eval mode) uses them. With small, varied batches these averages
follow the last batches closely, so two checkpoints a few steps apart can restore very
differently. :func:`recalibrate_batch_norm` replaces them with the exact average over many
training batches (as ``torch.optim.swa_utils.update_bn`` does for averaged weights), running
the method's own ``training_step`` so each layer sees the inputs it sees in training.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from inpaint_core.errors import ParameterError
from inpaint_core.trainable.model import TrainableModel

__all__ = ["batch_norm_layers", "recalibrate_batch_norm"]


def batch_norm_layers(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The BatchNorm layers (1-D, 2-D, 3-D) of ``module`` that track running statistics."""
    return [
        layer for layer in module.modules()
        if isinstance(layer, nn.modules.batchnorm._BatchNorm) and layer.track_running_stats
    ]


def recalibrate_batch_norm(model: TrainableModel, batches: Iterable[dict[str, Tensor]]) -> int:
    """Set the running mean and variance of every BatchNorm layer of ``model``'s inference
    networks to their exact average over ``batches``; weights, and the statistics of the other
    networks (discriminators), are not changed.

    Args:
        model: a trained :class:`TrainableModel` (on the batches' device).
        batches: training batches ``{"image": (B, 3, S, S) in [0, 1], "mask": (B, 1, S, S)}``,
            each run through ``model.training_step`` in train mode without gradients.

    Returns:
        The number of batches used (0 when the networks have no BatchNorm: nothing is run).

    Raises:
        ParameterError: ``batches`` is empty while there are layers to recalibrate.
    """
    layers = [
        layer for name in model.inference_networks
        for layer in batch_norm_layers(getattr(model, name))
    ]
    if not layers:
        return 0
    chosen = {id(layer) for layer in layers}
    others = [layer for layer in batch_norm_layers(model) if id(layer) not in chosen]
    saved = [{k: v.clone() for k, v in layer.state_dict().items()} for layer in others]
    momenta = [layer.momentum for layer in layers]
    was_training = model.training
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # cumulative average over every batch seen
    model.train()
    count = 0
    try:
        with torch.no_grad():
            for batch in batches:
                for _ in model.training_step(batch):  # forward passes only; losses unused
                    pass
                count += 1
    finally:
        for layer, momentum in zip(layers, momenta, strict=True):
            layer.momentum = momentum
        for layer, state in zip(others, saved, strict=True):  # e.g. discriminators: untouched
            layer.load_state_dict(state)
        model.train(was_training)
    if count == 0:
        raise ParameterError("no batches to recalibrate the BatchNorm statistics with")
    return count
