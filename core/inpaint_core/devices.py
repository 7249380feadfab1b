"""Device names: ``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``, checked before work starts."""

from __future__ import annotations

import re

from inpaint_core.errors import InvalidInputError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N", "mps")
_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def resolve_device(name: str) -> str:
    """Return a concrete torch device string for ``name``, or raise naming what is missing.

    ``auto`` picks ``cuda`` when available, then ``mps``, else ``cpu``. Asking for a device
    that is absent is an error, never a silent fall-back to the CPU.
    """
    text = name.strip().lower()
    if not _PATTERN.match(text):
        raise InvalidInputError(
            f"unknown device {name!r}; use one of: {', '.join(DEVICE_CHOICES)}"
        )
    if text == "cpu":
        return text
    import torch

    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if text == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if text == "mps":
        if not mps:
            raise InvalidInputError("device 'mps' requested but this torch build or machine has "
                                    "no MPS support; use --device cpu")
        return text
    if not cuda:
        raise InvalidInputError(
            f"device {text!r} requested but CUDA is not available (torch {torch.__version__}, "
            f"torch.cuda.is_available() is False); use --device cpu or auto"
        )
    index = int(text.split(":")[1]) if ":" in text else 0
    if index >= torch.cuda.device_count():
        raise InvalidInputError(
            f"device {text!r} requested but only {torch.cuda.device_count()} CUDA device(s) "
            "exist"
        )
    return text
