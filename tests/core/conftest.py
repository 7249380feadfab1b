"""Fixtures shared by ``tests/core``: the small scan scene of the tiled-engine tests, and the
reference-made LaMa fixture imported as weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from .engine_helpers import CHUNK, SHAPE, small_holes, write_store

LAMA_FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "lama"


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


@pytest.fixture(scope="module")
def lama_weights(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The reference-made LaMa fixture (BatchNorm with random statistics), imported."""
    from inpaint_core.cli import main

    out = tmp_path_factory.mktemp("lama") / "ffc.safetensors"
    assert main(["weights", "import", "lama", str(LAMA_FIXTURE / "ffc"), "--output", str(out)]) == 0
    return str(out)
