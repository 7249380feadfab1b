"""Classical (non-learned) methods: Telea, Navier-Stokes, biharmonic, push-pull, the
Telea + push-pull blend and exemplar fill.

Registered through :func:`register_inpaint_methods` like any third-party plugin.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import numpy as np

from inpaint_core import Family, InpaintMethod, MethodInfo, Parameter, ParamType, hookimpl
from inpaint_core.fills import Prior, classical_fill, opencv_fill, pushpull_fill

_RADIUS = Parameter(
    "radius",
    ParamType.INT,
    5,
    "Neighbourhood radius in pixels that each filled pixel draws from.",
    minimum=1,
    maximum=100,
)


class _OpenCVFill(InpaintMethod):
    """An OpenCV ``cv2.inpaint`` algorithm, chosen by the name of its flag.

    A uint8 image goes to OpenCV as it is, all channels in one call: exactly what a script
    calling ``cv2.inpaint`` on the image computes. Any other input (uint16, float) is filled
    plane by plane at 16 bit (:func:`~inpaint_core.fills.opencv_fill`), keeping the precision
    of 16-bit scans; OpenCV fills colour only at 8 bit.
    """

    opencv_flag: ClassVar[str]
    native_dtypes = frozenset({"uint8"})

    def run(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Fill the hole; see :meth:`InpaintMethod.run` for shapes. Deterministic."""
        import cv2

        flag = getattr(cv2, self.opencv_flag)
        radius = self.params["radius"]
        if image.dtype == np.uint8:
            filled = cv2.inpaint(image, mask.view(np.uint8), radius, flag)
            return filled.reshape(image.shape)  # OpenCV drops a single channel axis
        return opencv_fill(image, mask, radius, flag)


class Telea(_OpenCVFill):
    """Fast marching method of Telea (2004), via OpenCV."""

    opencv_flag = "INPAINT_TELEA"

    info = MethodInfo(
        name="telea",
        family=Family.CLASSICAL,
        summary="Fast marching fill from the hole boundary inwards (OpenCV).",
        reference="A. Telea, An Image Inpainting Technique Based on the Fast Marching Method, "
        "J. Graphics Tools 9(1), 2004.",
        parameters=(_RADIUS,),
        preferred_tile=1024,
        context_margin=16,
    )


class NavierStokes(_OpenCVFill):
    """Fluid-dynamics inpainting of Bertalmio, Bertozzi and Sapiro (2001), via OpenCV."""

    opencv_flag = "INPAINT_NS"

    info = MethodInfo(
        name="navier-stokes",
        family=Family.CLASSICAL,
        summary="Continues isophotes into the hole like an incompressible flow (OpenCV).",
        reference="M. Bertalmio, A. L. Bertozzi, G. Sapiro, Navier-Stokes, Fluid Dynamics, and "
        "Image and Video Inpainting, CVPR 2001.",
        parameters=(_RADIUS,),
        preferred_tile=1024,
        context_margin=16,
    )


class Biharmonic(InpaintMethod):
    """Smooth fill solving the biharmonic equation in the hole, via scikit-image."""

    info = MethodInfo(
        name="biharmonic",
        family=Family.CLASSICAL,
        summary="Smoothest fill: solves the biharmonic equation in each hole (scikit-image).",
        reference="S. B. Damelin, N. S. Hoang, On Surface Completion and Image Inpainting by "
        "Biharmonic Functions, Int. J. Math. Math. Sci., 2018.",
        parameters=(
            Parameter(
                "split_into_regions",
                ParamType.BOOL,
                True,
                "Solve each connected hole separately (much faster for many small holes).",
            ),
        ),
        preferred_tile=512,
        context_margin=8,
    )

    def run(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Fill the hole; see :meth:`InpaintMethod.run` for shapes. Deterministic."""
        from skimage.restoration import inpaint_biharmonic

        filled = inpaint_biharmonic(
            image,
            mask,
            split_into_regions=self.params["split_into_regions"],
            channel_axis=-1,
        )
        return filled.astype(np.float32, copy=False)


class PushPull(InpaintMethod):
    """Push-pull fill: a smooth membrane-like interpolation from every scale of the known part."""

    info = MethodInfo(
        name="push-pull",
        family=Family.CLASSICAL,
        summary="Smooth fill from a pyramid of mask-weighted means, coarse to fine; very fast.",
        reference="S. J. Gortler, R. Grzeszczuk, R. Szeliski, M. F. Cohen, The Lumigraph, "
        "SIGGRAPH 1996 (the pull-push interpolation).",
        preferred_tile=1024,
        context_margin=64,
    )

    def run(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Fill the hole; see :meth:`InpaintMethod.run` for shapes. Deterministic."""
        return pushpull_fill(image, mask)


class TeleaPushPull(InpaintMethod):
    """The mean of the Telea and push-pull fills: the ``blend`` prior of the learned methods."""

    info = MethodInfo(
        name="telea-pushpull",
        family=Family.CLASSICAL,
        summary="Mean of Telea's and push-pull's fills: their errors partly cancel "
        "(the learned methods' 'blend' prior).",
        reference="This project (docs/training.md, classical priors); Telea 2004; "
        "Gortler et al. 1996.",
        parameters=(_RADIUS,),
        preferred_tile=1024,
        context_margin=64,
    )

    def run(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Fill the hole; see :meth:`InpaintMethod.run` for shapes. Deterministic."""
        return classical_fill(image, mask, Prior.BLEND, radius=self.params["radius"])


class Exemplar(InpaintMethod):
    """Exemplar-based fill (Criminisi et al.): copies the best-matching known patches inwards."""

    info = MethodInfo(
        name="exemplar",
        family=Family.CLASSICAL,
        summary="Copies best-matching known patches into the hole, structure first (NumPy).",
        reference="A. Criminisi, P. Pérez, K. Toyama, Region Filling and Object Removal by "
        "Exemplar-Based Image Inpainting, IEEE TIP 13(9), 2004.",
        parameters=(
            Parameter(
                "patch_size",
                ParamType.INT,
                9,
                "Edge of the square patches that are matched and copied, in pixels (odd).",
                minimum=3,
                maximum=63,
            ),
            Parameter(
                "search_radius",
                ParamType.INT,
                48,
                "Source patches are searched this far from the target (0 = whole image).",
                minimum=0,
                maximum=100_000,
            ),
        ),
        preferred_tile=512,
        context_margin=64,
    )

    def run(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Fill the hole; see :meth:`InpaintMethod.run` for shapes. Ties broken with ``rng``."""
        from inpaint_methods.exemplar import exemplar_fill

        return exemplar_fill(
            image,
            mask,
            patch_size=self.params["patch_size"],
            search_radius=self.params["search_radius"],
            rng=rng,
        )


CLASSICAL_METHODS: tuple[type[InpaintMethod], ...] = (
    Telea, NavierStokes, Biharmonic, PushPull, TeleaPushPull, Exemplar,
)


@hookimpl
def register_inpaint_methods(register: Callable[[type[InpaintMethod]], None]) -> None:
    """Register the classical methods."""
    for method in CLASSICAL_METHODS:
        register(method)
