"""Fixtures shared by ``tests/core``: the small scan scene of the tiled-engine tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from .engine_helpers import CHUNK, SHAPE, small_holes, write_store


@pytest.fixture
def scene(tmp_path: Path) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (*SHAPE, 3), dtype=np.uint8)
    mask = small_holes()
    return {
        "image": image,
        "mask": mask,
        "scan": write_store(tmp_path / "scan.zarr", image, (CHUNK, CHUNK, 3)),
        "mask_path": write_store(tmp_path / "mask.zarr", mask, (CHUNK, CHUNK)),
        "tmp": tmp_path,
    }
