"""Weights files of a learned method's networks, written as ``inpaint train`` writes them, for
the tests that run a method on networks they did not train (or trained a step or two)."""

from __future__ import annotations

from pathlib import Path

import torch

from inpaint_core.checkpoint import flatten_state, save_checkpoint
from inpaint_core.learned import config_to_dict


def save_inference_networks(training: torch.nn.Module, config: object, method: str,
                            path: Path, *, half: bool) -> Path:
    """Save the inference networks of ``training`` (a method's training class, which lists
    them in ``inference_networks``) to the safetensors file ``path`` with its sidecar, for
    ``method`` and its config dataclass ``config``, at step 0; ``half`` stores fp16 as the
    trainer does. Returns ``path``."""
    names = training.inference_networks
    networks = {name: getattr(training, name).state_dict() for name in names}
    save_checkpoint(path, flatten_state(networks), method=method, config=config_to_dict(config),
                    step=0, half=half)
    return path


def write_untrained(training_class: type[torch.nn.Module], config: object, method: str,
                   folder: Path) -> Path:
    """``folder/METHOD.safetensors``: the untrained networks that ``training_class(config)``
    builds from ``torch.manual_seed(0)``, stored in fp16 as the trainer writes them."""
    torch.manual_seed(0)
    training = training_class(config)
    return save_inference_networks(training, config, method, folder / f"{method}.safetensors",
                                   half=True)
