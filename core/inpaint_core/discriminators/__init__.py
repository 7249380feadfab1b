"""Shared discriminators.

Example::

    from inpaint_core.discriminators import PatchDiscriminator, PatchDiscriminatorConfig
    d_global = PatchDiscriminator(PatchDiscriminatorConfig(in_channels=4))
    logits, features = d_global(images_with_edges)
"""

from inpaint_core.discriminators.patch import PatchDiscriminator, PatchDiscriminatorConfig

__all__ = ["PatchDiscriminator", "PatchDiscriminatorConfig"]
