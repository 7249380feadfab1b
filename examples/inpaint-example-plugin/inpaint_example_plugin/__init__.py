"""An example third-party plugin for napari-inpaint: the ``ring-mean`` method.

Each connected hole is filled with the mean colour of the known pixels within ``ring`` pixels
of it. Install with ``pip install ./examples/inpaint-example-plugin``; it then appears in
``inpaint methods`` and in the napari widget with its parameter, with no other registration.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

from inpaint_core import Family, InpaintMethod, MethodInfo, Parameter, ParamType, hookimpl


class RingMean(InpaintMethod):
    """Fill each connected hole with the mean colour of its surrounding known ring."""

    info = MethodInfo(
        name="ring-mean",
        family=Family.OTHER,
        summary="Flat fill: each hole takes the mean colour of the known pixels around it.",
        reference="Example plugin of napari-inpaint (no paper).",
        parameters=(
            Parameter(
                "ring",
                ParamType.INT,
                3,
                "Width in pixels of the known ring around each hole that is averaged.",
                minimum=1,
                maximum=64,
            ),
        ),
        preferred_tile=256,
        context_margin=3,
    )

    def run(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Fill float32 ``(H, W, C)`` ``image`` where bool ``(H, W)`` ``mask``; deterministic."""
        filled = image.copy()
        labels, count = ndimage.label(mask)
        for index in range(1, count + 1):
            hole = labels == index
            ring = ndimage.binary_dilation(hole, iterations=self.params["ring"]) & ~mask
            if not ring.any():  # a hole with no known pixel near it: use the whole image
                ring = ~mask
            filled[hole] = image[ring].mean(axis=0)
        return filled


@hookimpl
def register_inpaint_methods(register: Callable[[type[InpaintMethod]], None]) -> None:
    """Register ``ring-mean``."""
    register(RingMean)
