"""``lama``: LaMa, large-mask inpainting with Fast Fourier Convolutions (family fourier).

Suvorov, Logacheva, Mashikhin, Remizova, Ashukha, Silvestrov, Kong, Goka, Park, Lempitsky,
"Resolution-robust Large Mask Inpainting with Fourier Convolutions", WACV 2022
(github.com/advimman/lama, Apache-2.0).

- **Generator**: :class:`~inpaint_core.nn.layers.ffc.FfcResNetGenerator` (big-lama: ngf 64, three
  stride-2 downsamplings, 18 FFC residual blocks with 75 % global channels, sigmoid output),
  configured by :class:`~inpaint_core.nn.layers.ffc.LamaConfig`. Fully convolutional; the Fourier
  units give every residual block an image-wide receptive field.
- **Weights**: none are shipped and the method cannot be trained here (no
  ``training_class``: ``build_training`` raises). Import the published big-lama checkpoint
  with ``inpaint weights fetch big-lama``, or ``inpaint weights import lama big-lama --output
  W.safetensors`` and ``--weights W``.
- **Test path**, as the reference's ``bin/predict.py``: image and mask padded at the bottom
  and right to a multiple of 8 with numpy's ``'symmetric'`` mode (the edge pixel repeated;
  :attr:`Lama.pad_mode`), the mask binarised (``> 0``), the input ``cat(image * (1 - mask),
  mask)``, the composite ``mask * pred + (1 - mask) * image``, cropped back, and written
  truncated as the reference's ``np.clip(x * 255, 0, 255).astype('uint8')``
  (:func:`~inpaint_core.learned.as_truncated`).
- **Precision**: the FFTs run in float32 even under CUDA autocast (bf16 / fp16 FFTs are
  unsupported or inexact); the rest follows the ``precision`` parameter.

Differences from the reference: images smaller than 16 px are padded to 16 (the project's
minimum side), not 8; the LFU (not used by big-lama) halves both sides of a feature map,
which equals the reference on the square maps it supports.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import torch
from torch import Tensor, nn

from inpaint_core.learned import LearnedMethod, as_truncated
from inpaint_core.nn.layers.ffc import FfcResNetGenerator, LamaConfig
from inpaint_methods.learned_infos import (
    LAMA_CONTEXT_MARGIN,
    LAMA_INFO,
    LAMA_PREFERRED_TILE,
    SHIPPED_WEIGHTS,
)

__all__ = ["CONTEXT_MARGIN", "Lama", "LamaConfig", "LamaNetworks"]

#: Known context the tiled engine keeps around a hole. Each Fourier unit sees its whole input,
#: so no margin is exact; 128 px (half of LaMa's 256 training crops) on each side gives the
#: generator the context it was trained with, and leaves 768 px of a 1024 tile to fill.
CONTEXT_MARGIN = LAMA_CONTEXT_MARGIN
#: Tile edge for the tiled engine: LaMa was trained on 256 crops and generalises to ~2k.
PREFERRED_TILE = LAMA_PREFERRED_TILE


class LamaNetworks(nn.Module):
    """The inference networks: the child ``generator`` (a :class:`FfcResNetGenerator`)."""

    def __init__(self, config: LamaConfig) -> None:
        super().__init__()
        self.config = config
        self.generator = FfcResNetGenerator(config)


class Lama(LearnedMethod):
    """LaMa's FFC ResNet generator with imported published weights (inference only)."""

    info = LAMA_INFO
    config_class = LamaConfig
    networks_class = LamaNetworks
    # No training_class: LaMa's training needs a segmentation ResNet perceptual loss,
    # Places365-Challenge and weeks of GPU time.
    published_weights = (
        "run `inpaint weights fetch big-lama`, or download big-lama.zip "
        "(https://huggingface.co/smartywu/big-lama/resolve/main/big-lama.zip), unzip it and "
        "run `inpaint weights import lama big-lama --output W.safetensors`"
    )
    weights_folder = SHIPPED_WEIGHTS
    batch_predict = True
    pad_mode = "symmetric"
    #: backend=auto compiles a window size from this many pixels of it on: 150 windows of
    #: 512² (big-lama; benchmarks/compile_break_even.py, benchmarks/RESULTS.md).
    compile_after_pixels = 150 * 512 * 512
    #: Width 8, two FFC blocks: run untrained by the inference checks.
    smoke_test_options: ClassVar[Mapping[str, object]] = {
        "ngf": 8,
        "n_blocks": 2,
        "max_features": 64,
    }

    def predict(
        self, networks: nn.Module, image: Tensor, mask: Tensor
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """The reference's test-time forward on a padded batch; see the module docstring.

        Args:
            networks: a :class:`LamaNetworks`.
            image: float32 ``(B, 3, H, W)`` in [0, 1], H and W multiples of 8.
            mask: float32 ``(B, 1, H, W)``; > 0 is hole.

        Returns:
            float ``(B, 3, H, W)`` in [0, 1]: the truncation-shifted prediction in the hole,
            ``image`` elsewhere; no extras.
        """
        assert isinstance(networks, LamaNetworks)
        hole = (mask > 0).to(image.dtype)
        predicted = networks.generator(torch.cat([image * (1 - hole), hole], dim=1))
        predicted = as_truncated(predicted.float().clamp(0, 1))
        return hole * predicted + (1 - hole) * image, {}
