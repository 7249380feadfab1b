"""Format ``mi-gan-torchscript``: IOPaint's ``migan_traced.pt`` -> the ``mi-gan`` method.

IOPaint (Sanster/IOPaint, ``iopaint/model/mi_gan.py``) serves MI-GAN's 512 Places2 generator as
``migan_traced.pt``: ``torch.jit.trace`` of the bare inference generator
(``lib/model_zoo/migan_inference.py``'s ``Generator``, traced on a ``(1, 4, 512, 512)`` input
as MI-GAN's ``scripts/export_inference_model.py`` does), not of a pipeline: IOPaint itself
builds the input ``cat(0.5 - m, x * (1 - m))`` and does the cropping, resizing and
compositing (the ``mi-gan`` method reproduces those steps). The archive's ``data.pkl`` holds
the traced modules as ``__torch__.*`` objects with their parameters and buffers as attributes;
it is read with :func:`~inpaint_core.weights.pickles.load_pickled` (the TorchScript code is
never run or read), and the attributes give the generator's ``state_dict`` under its own names.
"""

from __future__ import annotations

from pathlib import Path

from inpaint_core.errors import InvalidWeightsError, MissingWeightsError
from inpaint_core.weights.formats import ConvertedWeights, WeightsFormat

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
    from inpaint_core.weights.lama_torchscript import module_tensors
    from inpaint_core.weights.mi_gan import converted
    from inpaint_core.weights.pickles import Placeholder, load_pickled

    path = Path(path)
    if not path.is_file():
        raise MissingWeightsError(
            f"{path} does not exist; format 'mi-gan-torchscript' expects {FORMAT.expects}"
        )
    root = load_pickled(path)
    if not isinstance(root, Placeholder) or not root.global_name.startswith("__torch__."):
        raise InvalidWeightsError(
            f"{path} is not a TorchScript module archive; for MI-GAN's own state dict files "
            "(migan_512_places2.pt ...) use format 'mi-gan'"
        )
    return converted(module_tensors(root), path, "mi-gan-torchscript")


FORMAT = WeightsFormat(
    name="mi-gan-torchscript",
    method="mi-gan",
    expects="IOPaint's TorchScript file migan_traced.pt",
    convert=convert,
    reference="Picsart-AI-Research/MI-GAN, as traced for Sanster/IOPaint",
)
