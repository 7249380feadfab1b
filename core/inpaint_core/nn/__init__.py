"""Network building blocks shared by the learned methods (they import torch).

- :mod:`inpaint_core.nn.layers`: layers and generator blocks (partial and gated convolutions,
  contextual attention, Fourier convolutions, the published architectures' networks);
- :mod:`inpaint_core.nn.losses`: adversarial, perceptual, style and texture losses;
- :mod:`inpaint_core.nn.discriminators`: PatchGAN, spectral-norm PatchGAN, global + local.
"""
