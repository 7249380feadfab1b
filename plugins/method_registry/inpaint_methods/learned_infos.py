"""The built-in learned methods' :class:`MethodInfo`, torch-free, and their lazy plugins.

Each learned plugin module (``inpaint_methods.lama`` and its siblings) imports torch. The
plugin manager registers them through :func:`lazy_plugin` instead: a small plugin object under
the module's own name that registers a stand-in carrying the info below
(:func:`inpaint_core.lazy.lazy_method`). Listing methods and running a classical one thus never
import torch; asking for a learned method's class imports its module. Each module's class uses
the info object defined here (``info = LAMA_INFO``), so the two cannot drift.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from inpaint_core import Family, InpaintMethod, MethodInfo, Parameter, ParamType, hookimpl
from inpaint_core.lazy import lazy_method
from inpaint_core.learned_params import LEARNED_PARAMETERS

#: The folder of the built-in learned methods' shipped weights (``NAME.safetensors`` and
#: ``NAME.json``; :attr:`inpaint_core.learned.LearnedMethod.weights_folder`).
SHIPPED_WEIGHTS = Path(__file__).resolve().parent / "weights"
#: LaMa's receptive field is global; 128 px of context keep tiled results close to whole ones.
LAMA_CONTEXT_MARGIN = 128
#: LaMa's preferred tile side in pixels.
LAMA_PREFERRED_TILE = 1024
#: GLCIC's context margin: the dilated convolutions' receptive field.
GLCIC_CONTEXT_MARGIN = 152
#: DeepFill v2 needs sides that are multiples of this.
DEEPFILL_V2_PAD_MULTIPLE = 8
#: MI-GAN's known context around a hole: IOPaint's crop margin around each hole's box.
MI_GAN_CONTEXT_MARGIN = 128



def learned_info(
    name: str,
    family: Family,
    summary: str,
    reference: str,
    *,
    pad_multiple: int,
    context_margin: int,
    parameters: tuple[Parameter, ...] = (),
    preferred_tile: int = 512,
) -> MethodInfo:
    """The :class:`MethodInfo` of a built-in learned method: ``learned``, GPU-capable, 512 px
    tiles unless ``preferred_tile`` says otherwise, and :data:`LEARNED_PARAMETERS` (weights,
    device, precision, backend) before the method's own ``parameters``."""
    return MethodInfo(
        name=name,
        family=family,
        summary=summary,
        reference=reference,
        learned=True,
        parameters=(*LEARNED_PARAMETERS, *parameters),
        pad_multiple=pad_multiple,
        preferred_tile=preferred_tile,
        context_margin=context_margin,
        supports_gpu=True,
    )


#: :class:`inpaint_methods.edge_gan.EdgeGan`
EDGE_GAN_INFO = learned_info(
    name="edge-gan",
    family=Family.DCGAN,
    summary="Edge-guided two-stage GAN with global and local discriminators (murals).",
    reference="Cultural-relic image restoration with an edge-guided dual-discriminator GAN "
    "(seed 003), building on K. Nazeri et al., EdgeConnect, ICCVW 2019.",
    parameters=(
        Parameter(
            "canny_sigma",
            ParamType.FLOAT,
            2.0,
            "Gaussian sigma of the Canny detector on the known region.",
            minimum=0.1,
            maximum=10.0,
        ),
        Parameter(
            "edge_threshold",
            ParamType.FLOAT,
            0.0,
            "Binarise predicted edges at this probability; 0 keeps them soft, as in training.",
            minimum=0.0,
            maximum=0.99,
        ),
        Parameter(
            "show_edges",
            ParamType.BOOL,
            False,
            "Also return the composite edge map (an extra 'edges' output).",
        ),
    ),
    pad_multiple=4,
    context_margin=64,
)


#: :class:`inpaint_methods.pix2pix.Pix2Pix`
PIX2PIX_INFO = learned_info(
    name="pix2pix",
    family=Family.CGAN,
    summary="U-Net generator with a conditional 70x70 PatchGAN, L1 + cGAN loss.",
    reference="P. Isola, J.-Y. Zhu, T. Zhou, A. A. Efros, Image-to-Image Translation with "
    "Conditional Adversarial Networks, CVPR 2017.",
    pad_multiple=1,  # predict pads to the loaded config's 2**depth itself
    context_margin=64,
)


#: :class:`inpaint_methods.glcic.Glcic`
GLCIC_INFO = learned_info(
    name="glcic",
    family=Family.DCGAN,
    summary="Dilated-conv completion network trained with global and local discriminators.",
    reference="S. Iizuka, E. Simo-Serra, H. Ishikawa, Globally and Locally Consistent "
    "Image Completion, SIGGRAPH 2017.",
    pad_multiple=4,
    context_margin=GLCIC_CONTEXT_MARGIN,
)


#: :class:`inpaint_methods.context_encoder.ContextEncoder`
CONTEXT_ENCODER_INFO = learned_info(
    name="context-encoder",
    family=Family.CONTEXT_ENCODER,
    summary="Encoder, channel-wise FC, decoder (L2 + GAN); resizes a window around each hole.",
    reference="D. Pathak et al., Context Encoders: Feature Learning by Inpainting, CVPR 2016.",
    parameters=(
        Parameter(
            "context_scale",
            ParamType.FLOAT,
            2.0,
            "Window side around each hole over the hole's bounding-box side (at least the "
            "network's input size); the window is resized to the input size.",
            minimum=1.0,
            maximum=8.0,
        ),
    ),
    pad_multiple=1,
    context_margin=64,
)


#: :class:`inpaint_methods.partial_conv_unet.PartialConvUnet`
PARTIAL_CONV_UNET_INFO = learned_info(
    name="partial-conv-unet",
    family=Family.UNET,
    summary="U-Net of partial convolutions that see only known pixels (irregular holes).",
    reference="G. Liu, F. A. Reda, K. J. Shih, T.-C. Wang, A. Tao, B. Catanzaro, Image "
    "Inpainting for Irregular Holes Using Partial Convolutions, ECCV 2018.",
    pad_multiple=1,  # predict pads to the loaded config's 2**depth itself
    context_margin=64,
)


#: :class:`inpaint_methods.deepfill_v2.DeepFillV2`
DEEPFILL_V2_INFO = learned_info(
    name="deepfill-v2",
    family=Family.STACKGAN,
    summary="Coarse-to-fine gated convolutions with contextual attention (DeepFill v2).",
    reference="J. Yu et al., Free-Form Image Inpainting with Gated Convolution, ICCV 2019; "
    "J. Yu et al., Generative Image Inpainting with Contextual Attention, CVPR 2018.",
    pad_multiple=DEEPFILL_V2_PAD_MULTIPLE,
    context_margin=128,
)


#: :class:`inpaint_methods.lama.Lama`
LAMA_INFO = learned_info(
    name="lama",
    family=Family.FOURIER,
    summary="LaMa: Fast Fourier Convolution ResNet for large masks (imported weights).",
    reference="R. Suvorov et al., Resolution-robust Large Mask Inpainting with Fourier "
    "Convolutions, WACV 2022.",
    pad_multiple=8,
    preferred_tile=LAMA_PREFERRED_TILE,
    context_margin=LAMA_CONTEXT_MARGIN,
)

#: :class:`inpaint_methods.mi_gan.MiGan`
MI_GAN_INFO = learned_info(
    name="mi-gan",
    family=Family.CGAN,
    summary="MI-GAN: small conditional GAN, crops around each hole at 256/512 (imported weights).",
    reference="A. Sargsyan, S. Navasardyan, X. Xu, H. Shi, MI-GAN: A Simple Baseline for Image "
    "Inpainting on Mobile Devices, ICCV 2023.",
    pad_multiple=1,  # predict crops and pads to the model side itself
    context_margin=MI_GAN_CONTEXT_MARGIN,
)

#: Plugin module name -> (class name, info) of the method it registers.
LEARNED_PLUGINS: dict[str, tuple[str, MethodInfo]] = {
    "inpaint_methods.edge_gan": ("EdgeGan", EDGE_GAN_INFO),
    "inpaint_methods.pix2pix": ("Pix2Pix", PIX2PIX_INFO),
    "inpaint_methods.glcic": ("Glcic", GLCIC_INFO),
    "inpaint_methods.context_encoder": ("ContextEncoder", CONTEXT_ENCODER_INFO),
    "inpaint_methods.partial_conv_unet": ("PartialConvUnet", PARTIAL_CONV_UNET_INFO),
    "inpaint_methods.deepfill_v2": ("DeepFillV2", DEEPFILL_V2_INFO),
    "inpaint_methods.lama": ("Lama", LAMA_INFO),
    "inpaint_methods.mi_gan": ("MiGan", MI_GAN_INFO),
}


class LazyPlugin:
    """A plugin object that registers one learned method by its info, without importing it."""

    def __init__(self, module: str) -> None:
        class_name, info = LEARNED_PLUGINS[module]
        self.method = lazy_method(info, f"{module}:{class_name}")

    @hookimpl
    def register_inpaint_methods(self, register: Callable[[type[InpaintMethod]], None]) -> None:
        """Register the stand-in of this plugin's method."""
        register(self.method)


def lazy_plugin(module: str) -> LazyPlugin:
    """The lazy plugin for built-in learned plugin ``module`` (a key of :data:`LEARNED_PLUGINS`)."""
    return LazyPlugin(module)
