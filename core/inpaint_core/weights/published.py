"""The catalogue of published checkpoints, and where installed weights live.

Each :class:`CatalogueEntry` says what a checkpoint is (method, format, training data,
licence, the authors' published scores), where its publisher serves it (URL, digest, archive
layout) and whether it is installed. Installed weights are this project's
``NAME.safetensors`` + ``NAME.json`` pair in :func:`weights_folder`: ``$INPAINT_HOME/weights``,
by default the platform's user data folder (``~/.local/share/napari-inpaint`` on Linux).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from inpaint_core.errors import ParameterError

__all__ = [
    "CATALOGUE",
    "HOME_ENV",
    "UNPUBLISHED",
    "CatalogueEntry",
    "catalogue",
    "downloads_folder",
    "get_entry",
    "inpaint_home",
    "installed_path",
    "weights_folder",
]

#: The environment variable that moves the user's napari-inpaint folder.
HOME_ENV = "INPAINT_HOME"

_EDGECONNECT_ZIP = (
    "https://drive.usercontent.google.com/download?id=1bXYYcFFbvTsoZUnaoePNEObPzfx1DkPV"
    "&export=download&confirm=t"
)
_EDGECONNECT_PAGE = "https://github.com/knazeri/edge-connect#getting-started"
_CC_BY_NC = "CC BY-NC 4.0 (non-commercial use only)"
_OPENMMLAB = "https://download.openmmlab.com/mmediting/inpainting/"
_OPENMMLAB_PLACES = "Places365-Challenge scenes (OpenMMLab's training list) at 256 x 256"
_OPENMMLAB_REFERENCE = "OpenMMLab mmediting / mmagic (Apache-2.0), github.com/open-mmlab/mmagic"
# Approximate download sizes in MB: every float32 tensor the published file holds (networks,
# and buffers such as PConv's mask kernels), counted on the reference's own modules.
SIZE_GLCIC = 205.0
SIZE_PCONV = 213.0
SIZE_DEEPFILL = 41.0
SIZE_MIGAN = 29.5
MIGAN_SCORES = (
    "FID and LPIPS on Places2 at 512 x 512 (and at 256, and FFHQ at 256) with Co-Mod-GAN's "
    "free-form masks: the paper's quantitative comparison table (ICCV 2023; the repository's "
    "README reports no numbers); the survey protocol has no row for it"
)


@dataclass(frozen=True)
class CatalogueEntry:
    """A published checkpoint.

    Attributes:
        name: the catalogue name, used by ``inpaint weights fetch NAME`` and ``--weights NAME``.
        method: the registered method that runs it.
        format: the :mod:`~inpaint_core.weights.formats` name that converts it.
        description: one line on what it is.
        training_data: the data set it was trained on.
        licence: the licence of the weights, as the publisher states it.
        url: where the publisher serves the file (a direct download).
        page: the publisher's page that lists it (for downloading by hand).
        digest: ``"sha256:HEX"`` or ``"md5:HEX"`` as the publisher pins it, or None when the
            publisher gives none (the fetch then records the sha256 it computed).
        size_mb: the download's size in MB (10^6 bytes), approximate.
        archive: ``"zip"`` when the download is a zip archive, else None.
        member: inside the archive, the folder (or file) the format converts; with no archive,
            the name the download is saved under.
        scores: the authors' published scores, as they report them.
        reference: the paper and the reference implementation.
    """

    name: str
    method: str
    format: str
    description: str
    training_data: str
    licence: str
    url: str
    page: str
    digest: str | None
    size_mb: float
    archive: str | None
    member: str
    scores: str
    reference: str

    def to_dict(self) -> dict[str, Any]:
        """The entry as a JSON-ready dict, with ``installed`` and the installed ``path``."""
        path = installed_path(self.name)
        return {**asdict(self), "installed": path.is_file(), "path": str(path)}


CATALOGUE: tuple[CatalogueEntry, ...] = (
    CatalogueEntry(
        name="big-lama",
        method="lama",
        format="lama",
        description="LaMa, the big model: Fourier convolution ResNet (27 M parameters in the "
        "generator), robust to large masks and high resolutions",
        training_data="Places365-Challenge (4.5 M scene photographs), LaMa's wide masks",
        licence="Apache-2.0",
        url="https://huggingface.co/smartywu/big-lama/resolve/main/big-lama.zip",
        page="https://github.com/advimman/lama#inference-",
        digest=None,
        size_mb=380.0,
        archive="zip",
        member="big-lama",
        scores="FID and LPIPS on 30,000 Places images at 512 px, narrow to wide masks: the "
        "paper's Table 1 (Big LaMa); the survey protocol has no row for it",
        reference="R. Suvorov et al., Resolution-robust Large Mask Inpainting with Fourier "
        "Convolutions, WACV 2022; github.com/advimman/lama",
    ),
    CatalogueEntry(
        name="big-lama-iopaint",
        method="lama",
        format="lama-torchscript",
        description="the same big LaMa generator, as IOPaint serves it: one TorchScript file "
        "(its code is never run: only its tensors are read)",
        training_data="Places365-Challenge (4.5 M scene photographs), LaMa's wide masks",
        licence="Apache-2.0",
        url="https://github.com/Sanster/models/releases/download/add_big_lama/big-lama.pt",
        page="https://github.com/Sanster/IOPaint",
        digest="md5:e3aa4aaa15225a33ec84f9f4bc47e500",
        size_mb=205.0,
        archive=None,
        member="big-lama.pt",
        scores="as big-lama",
        reference="R. Suvorov et al., WACV 2022; github.com/advimman/lama, traced by "
        "github.com/Sanster/IOPaint (iopaint/model/lama.py pins the md5)",
    ),
    *(
        CatalogueEntry(
            name=f"edgeconnect-{key}",
            method="edge-gan",
            format="edge-connect",
            description=f"EdgeConnect (edge generator G1 + image generator G2) trained on {data}",
            training_data=f"{data}, irregular masks of Liu et al. 2018",
            licence=_CC_BY_NC,
            url=_EDGECONNECT_ZIP,
            page=_EDGECONNECT_PAGE,
            digest=None,
            size_mb=size,
            archive="zip",
            member=key,
            scores=scores,
            reference="K. Nazeri et al., EdgeConnect: Structure Guided Image Inpainting using "
            "Edge Prediction, ICCV Workshops 2019; github.com/knazeri/edge-connect",
        )
        for key, data, size, scores in (
            (
                "places2",
                "Places2",
                330.0,
                "survey protocol on Places2 (SPEC's survey, Tables 10-11): PSNR 20.94 dB / SSIM "
                "0.809 at centre 25 %, 21.66 dB / 0.764 at free-form 40 %",
            ),
            (
                "celeba",
                "CelebA faces",
                330.0,
                "survey protocol on CelebA (SPEC's survey, Tables 10-11): PSNR 22.52 dB / SSIM "
                "0.853 at centre 25 %, 25.43 dB / 0.860 at free-form 40 %",
            ),
            (
                "psv",
                "Paris StreetView",
                330.0,
                "PSNR, SSIM and FID on Paris StreetView: the paper's Table 1; the survey "
                "protocol has no row for it",
            ),
        )
    ),
    CatalogueEntry(
        name="context-encoder-paris",
        method="context-encoder",
        format="context-encoder-pytorch",
        description="Pathak et al.'s centre-region Context Encoder (128 px window, 64 px "
        "centre) as trained in PyTorch by its port; holes anywhere are filled through centred "
        "windows",
        training_data="Paris StreetView (Doersch et al. 2012; street facades, shared by the "
        "authors on request for research)",
        licence="MIT (the port's repository)",
        url="https://drive.usercontent.google.com/download?id=0B6oeoQaX0xmzS0RXXzNYZkZ3ZUk"
        "&export=download&confirm=t",
        page="https://github.com/BoyuanJiang/context_encoder_pytorch#1-semantic-inpainting-demo",
        digest=None,
        size_mb=285.0,
        archive=None,
        member="netG_streetview.pth",
        scores="the port reports none; the authors' Lua model of the same architecture, Paris "
        "StreetView centre region (the paper's Table 1): mean L1 9.37 %, mean L2 1.96 %, "
        "PSNR 18.58 dB",
        reference="D. Pathak et al., Context Encoders: Feature Learning by Inpainting, CVPR "
        "2016 (github.com/pathak22/context-encoder, Lua Torch .t7 models); PyTorch port "
        "github.com/BoyuanJiang/context_encoder_pytorch",
    ),
    CatalogueEntry(
        name="glcic-places",
        method="glcic",
        format="mmagic-glcic",
        description="Globally and Locally Consistent Image Completion as OpenMMLab trained it: "
        "dilated-convolution completion network, 256 x 256, square holes",
        training_data=_OPENMMLAB_PLACES + ", one square box hole per image",
        licence="Apache-2.0",
        url=_OPENMMLAB + "global_local/gl_256x256_8x12_places_20200619-52a040a8.pth",
        page="https://github.com/open-mmlab/mmagic/tree/main/configs/global_local",
        digest="sha256:52a040a8",
        size_mb=SIZE_GLCIC,
        archive=None,
        member="gl_256x256_8x12_places_20200619-52a040a8.pth",
        scores="Places365-val, square box holes, 256 x 256 (OpenMMLab's table): l1 error 11.164, "
        "PSNR 23.152 dB, SSIM 0.862",
        reference="S. Iizuka, E. Simo-Serra, H. Ishikawa, SIGGRAPH 2017; " + _OPENMMLAB_REFERENCE,
    ),
    CatalogueEntry(
        name="partial-conv-places",
        method="partial-conv-unet",
        format="mmagic-pconv",
        description="Partial-convolution U-Net as OpenMMLab trained it (stage 2: fine-tuned "
        "with frozen encoder batch norm), 256 x 256, free-form holes",
        training_data=_OPENMMLAB_PLACES + ", free-form masks",
        licence="Apache-2.0",
        url=_OPENMMLAB + "pconv/pconv_256x256_stage2_4x2_places_20200619-1ffed0e8.pth",
        page="https://github.com/open-mmlab/mmagic/tree/main/configs/partial_conv",
        digest="sha256:1ffed0e8",
        size_mb=SIZE_PCONV,
        archive=None,
        member="pconv_256x256_stage2_4x2_places_20200619-1ffed0e8.pth",
        scores="Places365-val, free-form holes, 256 x 256 (OpenMMLab's table): l1 error 8.776, "
        "PSNR 22.762 dB, SSIM 0.801",
        reference="G. Liu et al., ECCV 2018; " + _OPENMMLAB_REFERENCE,
    ),
    CatalogueEntry(
        name="deepfill-v2-places",
        method="deepfill-v2",
        format="mmagic-deepfillv2",
        description="DeepFill v2 as OpenMMLab trained it: gated convolutions, coarse and "
        "refinement stages with contextual attention, 256 x 256, free-form holes",
        training_data=_OPENMMLAB_PLACES + ", free-form masks",
        licence="Apache-2.0",
        url=_OPENMMLAB + "deepfillv2/deepfillv2_256x256_8x2_places_20200619-10d15793.pth",
        page="https://github.com/open-mmlab/mmagic/tree/main/configs/deepfillv2",
        digest="sha256:10d15793",
        size_mb=SIZE_DEEPFILL,
        archive=None,
        member="deepfillv2_256x256_8x2_places_20200619-10d15793.pth",
        scores="Places365-val, free-form holes, 256 x 256 (OpenMMLab's table): l1 error 8.635, "
        "PSNR 22.398 dB, SSIM 0.815",
        reference="J. Yu et al., Free-Form Image Inpainting with Gated Convolution, ICCV 2019; "
        + _OPENMMLAB_REFERENCE,
    ),
    CatalogueEntry(
        name="mi-gan-places2-512-iopaint",
        method="mi-gan",
        format="mi-gan-torchscript",
        description="MI-GAN's 512 x 512 Places2 generator as IOPaint serves it: one TorchScript "
        "file (its code is never run: only its tensors are read)",
        training_data="Places2 (Places365-Standard) at 512 x 512, CoModGAN's free-form masks",
        licence="MIT",
        url="https://github.com/Sanster/models/releases/download/migan/migan_traced.pt",
        page="https://github.com/Sanster/IOPaint",
        digest="md5:76eb3b1a71c400ee3290524f7a11b89c",
        size_mb=SIZE_MIGAN,
        archive=None,
        member="migan_traced.pt",
        scores=MIGAN_SCORES,
        reference="A. Sargsyan, S. Navasardyan, X. Xu, H. Shi, MI-GAN: A Simple Baseline for "
        "Image Inpainting on Mobile Devices, ICCV 2023; github.com/Picsart-AI-Research/MI-GAN, "
        "traced by github.com/Sanster/IOPaint (iopaint/model/mi_gan.py pins the md5)",
    ),
)

#: Methods with no published inpainting checkpoint this project could load, and the evidence.
UNPUBLISHED: dict[str, str] = {
    "pix2pix": "no published pix2pix checkpoint is trained for inpainting: the authors' "
    "(phillipi/pix2pix, junyanz/pytorch-CycleGAN-and-pix2pix) translate labels to facades, "
    "cityscapes, maps, edges to shoes and handbags, day to night and the like; `pix2pix` runs "
    "the weights trained here (docs/methods/pix2pix.md)",
}


def catalogue() -> tuple[CatalogueEntry, ...]:
    """Every known published checkpoint, in catalogue order."""
    return CATALOGUE


def get_entry(name: str) -> CatalogueEntry:
    """The entry called ``name``; an unknown name raises listing the valid ones."""
    for entry in CATALOGUE:
        if entry.name == name:
            return entry
    valid = ", ".join(entry.name for entry in CATALOGUE)
    raise ParameterError(f"unknown weights {name!r}; the catalogue has: {valid}")


def inpaint_home() -> Path:
    """``$INPAINT_HOME``, else the platform's user data folder for napari-inpaint."""
    given = os.environ.get(HOME_ENV)
    if given:
        return Path(given).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("napari-inpaint", appauthor=False))


def weights_folder() -> Path:
    """Where installed weights live: ``inpaint_home() / "weights"``."""
    return inpaint_home() / "weights"


def downloads_folder() -> Path:
    """Where downloads (and their ``.part`` files while cut) are kept."""
    return inpaint_home() / "downloads"


def installed_path(name: str) -> Path:
    """The ``.safetensors`` file that entry ``name`` is (or would be) installed as."""
    return weights_folder() / f"{name}.safetensors"
