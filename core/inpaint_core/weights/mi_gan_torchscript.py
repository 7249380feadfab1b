"""Format ``mi-gan-torchscript``: IOPaint's ``migan_traced.pt`` -> the ``mi-gan`` method.

IOPaint (Sanster/IOPaint, ``iopaint/model/mi_gan.py``) serves MI-GAN's 512 Places2 generator as
``migan_traced.pt``: ``torch.jit.trace`` of the bare inference generator
(``lib/model_zoo/migan_inference.py``'s ``Generator``, traced on a ``(1, 4, 512, 512)`` input
as MI-GAN's ``scripts/export_inference_model.py`` does), not of a pipeline: IOPaint itself
builds the input ``cat(0.5 - m, x * (1 - m))`` and does the cropping, resizing and
compositing (the ``mi-gan`` method reproduces those steps). The archive's tensors are read by
:mod:`inpaint_core.weights.torchscript` (the TorchScript code is never run or read), by the
dotted names that are the generator's own ``state_dict`` keys.
"""

from __future__ import annotations

from pathlib import Path

from inpaint_core.weights.formats import ConvertedWeights, WeightsFormat
from inpaint_core.weights.torchscript import read_archive_tensors

__all__ = ["FORMAT", "convert"]


def convert(path: Path) -> ConvertedWeights:
    """Read IOPaint's ``migan_traced.pt``; see the module docstring.

    Args:
        path: the TorchScript file.

    Returns:
        The ``mi-gan`` method's config (inferred from the tensors) and ``{"generator": state}``.

    Raises:
        MissingWeightsError: the file does not exist.
        InvalidWeightsError: not a TorchScript archive of a MI-GAN generator, or tensors that
            do not fit the inferred generator (the first mismatching keys are named).
    """
    from inpaint_core.weights.mi_gan import converted

    path = Path(path)
    tensors = read_archive_tensors(
        path, "mi-gan-torchscript", FORMAT.expects,
        "for MI-GAN's own state dict files (migan_512_places2.pt ...) use format 'mi-gan'",
    )
    return converted(tensors, path, "mi-gan-torchscript")


FORMAT = WeightsFormat(
    name="mi-gan-torchscript",
    method="mi-gan",
    expects="IOPaint's TorchScript file migan_traced.pt",
    convert=convert,
    reference="Picsart-AI-Research/MI-GAN, as traced for Sanster/IOPaint",
)
