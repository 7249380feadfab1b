"""Sample data: the synthetic damaged mural and a real photograph with cracks drawn on it.

The mural is made on the fly by :mod:`inpaint_core.samples` (also the generator of ``make
demo``'s scan, ``sample_data/make_scan.py``), so the sample and the demo scan are the same kind
of picture. Its
damage comes as a Labels layer with one label per damage type: 1 = cracks, 2 = losses.
"""

from __future__ import annotations

from typing import Any

import numpy as np

LayerData = tuple[Any, dict[str, Any], str]
#: The side of the sample mural in pixels.
MURAL_SIZE = 2048
CRACKS, LOSSES = 1, 2
def make_mural(size: int, seed: int = 2026, damage: float = 0.02) -> tuple[
        np.ndarray, np.ndarray]:
    """uint8 ``(size, size, 3)`` damaged mural and uint8 ``(size, size)`` damage labels
    (1 = cracks, 2 = losses); the damaged pixels show the plaster colour."""
    from inpaint_core import samples as scan

    rng = np.random.default_rng(seed)
    grain, field = scan.grain_tile(rng), scan.colour_field(size, rng)
    cracks, losses = scan.damage_shapes(size, damage, rng)
    window = slice(0, size)
    picture = scan.painting(field, grain, window, window)
    labels = np.zeros((size, size), dtype=np.uint8)
    labels[scan.damage_window([], losses, window, window)] = LOSSES
    labels[scan.damage_window(cracks, [], window, window)] = CRACKS
    picture[labels != 0] = scan.PLASTER
    return picture, labels


def mural() -> list[LayerData]:
    """npe2 sample: the synthetic damaged mural with its damage Labels layer."""
    picture, labels = make_mural(MURAL_SIZE)
    return [
        (picture, {"name": "mural", "rgb": True}, "image"),
        (labels, {"name": "mural damage", "opacity": 0.6}, "labels"),
    ]


def cracked_photo(seed: int = 7, coverage: float = 0.04) -> tuple[np.ndarray, np.ndarray]:
    """scikit-image's coffee photograph (uint8 ``(400, 600, 3)``) with dark cracks drawn on it,
    and the crack mask as uint8 labels (1 = crack)."""
    from skimage import data

    from inpaint_core.masks import crack_mask

    photo = data.coffee()
    cracks = crack_mask(photo.shape[:2], coverage, np.random.default_rng(seed))
    damaged = photo.copy()
    damaged[cracks] = (34, 28, 24)
    return damaged, cracks.astype(np.uint8)


def photo() -> list[LayerData]:
    """npe2 sample: a real photograph with cracks, and the cracks as a Labels layer."""
    damaged, cracks = cracked_photo()
    return [
        (damaged, {"name": "cracked coffee", "rgb": True}, "image"),
        (cracks, {"name": "cracks", "opacity": 0.6}, "labels"),
    ]
