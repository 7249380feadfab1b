"""Every registered method, built-in or third-party, keeps the contract of check_method."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import inpaint_core
from inpaint_core import Family, InpaintMethod, MethodInfo
from inpaint_core.testing import check_method

REGISTERED = [info.name for info in inpaint_core.list_methods()]
LAMA_FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "lama" / "ffc"


def weights_for(name: str, folder: Path) -> dict[str, object]:
    """Parameters of methods that ship no weights: small weights converted from a fixture of
    the published format (``lama``: tests/fixtures/lama, random weights in big-lama's layout)."""
    if name != "lama":
        return {}
    from inpaint_core.checkpoint import flatten_state, save_checkpoint
    from inpaint_core.weights.lama import FORMAT

    converted = FORMAT.convert(LAMA_FIXTURE)
    path = folder / "lama.safetensors"
    save_checkpoint(path, flatten_state(converted.networks), method=converted.method,
                    config=converted.config, step=0)  # fmt: skip
    return {"weights": path, "device": "cpu"}


@pytest.mark.parametrize("name", REGISTERED)
def test_registered_method_keeps_the_contract(name: str, tmp_path: Path) -> None:
    check_method(name, weights_for(name, tmp_path) or None)


def test_installed_third_party_method_keeps_the_contract(example_plugin) -> None:
    check_method("ring-mean", {"ring": 2})


class Unseeded(InpaintMethod):
    """Breaks determinism: draws from NumPy's global generator instead of ``rng``."""

    info = MethodInfo("unseeded", Family.OTHER, "broken", "none")

    def run(self, image, mask, rng):
        return np.random.random(image.shape).astype(np.float32)


class Explodes(InpaintMethod):
    """Breaks the output contract: NaN in the hole."""

    info = MethodInfo("explodes", Family.OTHER, "broken", "none")

    def run(self, image, mask, rng):
        return np.full(image.shape, np.nan, np.float32)


def test_check_method_catches_a_non_deterministic_method() -> None:
    with pytest.raises(AssertionError, match=r"'unseeded' breaks the contract .*not deterministic"):
        check_method(Unseeded)


def test_check_method_catches_nan_output() -> None:
    with pytest.raises(AssertionError, match=r"'explodes' breaks the contract \(uint8 \(48, 64\)\)"
                       ": method 'explodes' returned NaN"):  # fmt: skip
        check_method(Explodes)
