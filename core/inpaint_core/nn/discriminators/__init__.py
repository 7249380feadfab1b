"""Shared discriminators.

Example::

    from inpaint_core.nn.discriminators import PatchDiscriminator, PatchDiscriminatorConfig
    d_global = PatchDiscriminator(PatchDiscriminatorConfig(in_channels=4))
    logits, features = d_global(images_with_edges)
"""

from inpaint_core.nn.discriminators.global_local import (
    GlobalLocalDiscriminator,
    GlobalLocalDiscriminatorConfig,
)
from inpaint_core.nn.discriminators.patch import PatchDiscriminator, PatchDiscriminatorConfig
from inpaint_core.nn.discriminators.sn_patch import SNPatchDiscriminator, SNPatchDiscriminatorConfig

__all__ = [
    "GlobalLocalDiscriminator",
    "GlobalLocalDiscriminatorConfig",
    "PatchDiscriminator",
    "PatchDiscriminatorConfig",
    "SNPatchDiscriminator",
    "SNPatchDiscriminatorConfig",
]
