"""Every registered method, built-in or third-party, keeps the contract of check_method."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import inpaint_core
from inpaint_core import Family, InpaintMethod, MethodInfo
from inpaint_core.testing import check_method, contract_image, contract_mask

REGISTERED = [info.name for info in inpaint_core.list_methods()]
LAMA_FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "lama" / "ffc"
MI_GAN_FIXTURE = LAMA_FIXTURE.parents[1] / "mi_gan" / "migan_traced_tiny.pt"


def weights_for(name: str, folder: Path) -> dict[str, object]:
    """Parameters of methods that ship no weights: small weights converted from a fixture of
    the published format (``lama``: tests/fixtures/lama, random weights in big-lama's layout;
    ``mi-gan``: tests/fixtures/mi_gan's traced 128 generator)."""
    if name not in ("lama", "mi-gan"):
        return {}
    from inpaint_core.checkpoint import flatten_state, save_checkpoint
    from inpaint_core.weights import get_format

    source = LAMA_FIXTURE if name == "lama" else MI_GAN_FIXTURE
    converted = get_format("lama" if name == "lama" else "mi-gan-torchscript").convert(source)
    path = folder / f"{name}.safetensors"
    save_checkpoint(path, flatten_state(converted.networks), method=converted.method,
                    config=converted.config, step=0)
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
                       ": method 'explodes' returned NaN"):
        check_method(Explodes)


# --- the raw output of run(), which inpaint() would paste and clip out of sight ----------------
def _filled(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A valid answer: the input with its hole set to mid-grey (same dtype)."""
    out = image.copy()
    out[mask] = 0.5
    return out


class OutOfRange(InpaintMethod):
    """The issue's example: 7.5 in the hole is caught by inpaint(); -3 outside it was not."""

    info = MethodInfo("out-of-range", Family.OTHER, "broken", "none")

    def run(self, image, mask, rng):
        out = np.full(image.shape, -3.0, np.float32)
        out[mask] = 0.5
        return out


class WrongDtype(InpaintMethod):
    """Returns float64, which inpaint() converts silently; run() must return float32."""

    info = MethodInfo("wrong-dtype", Family.OTHER, "broken", "none")

    def run(self, image, mask, rng):
        return _filled(image, mask).astype(np.float64)


class WrongShape(InpaintMethod):
    """Returns one row too many."""

    info = MethodInfo("wrong-shape", Family.OTHER, "broken", "none")

    def run(self, image, mask, rng):
        return np.concatenate([_filled(image, mask), image[:1]], axis=0)


class NanOutside(InpaintMethod):
    """A valid hole, but NaN in one known pixel, which inpaint() never pastes."""

    info = MethodInfo("nan-outside", Family.OTHER, "broken", "none")

    def run(self, image, mask, rng):
        out = _filled(image, mask)
        out[0, 0] = np.nan
        return out


class WritesItsInput(InpaintMethod):
    """Darkens the image it was given in place, outside the hole too, and returns it."""

    info = MethodInfo("writes-its-input", Family.OTHER, "broken", "none")

    def run(self, image, mask, rng):
        image *= 0.5
        image[mask] = 0.25
        return image


class WritesItsMask(InpaintMethod):
    """Clears the hole of the mask it was given."""

    info = MethodInfo("writes-its-mask", Family.OTHER, "broken", "none")

    def run(self, image, mask, rng):
        out = _filled(image, mask)
        mask[:] = False
        return out


@pytest.mark.parametrize(
    ("method", "message"),
    [
        (
            OutOfRange,
            r"run\(\) returned values in \[-3, 0.5\] \(\[-3, -3\] outside the hole\); "
            r"results must lie in \[0, 1\]",
        ),
        (WrongDtype, r"run\(\) returned dtype float64; expected float32"),
        (WrongShape, r"returned shape \(49, 64, 1\); expected \(48, 64, 1\)"),
        (NanOutside, r"run\(\) returned NaN or infinite values at 1 pixels \(1 outside the hole\)"),
        (
            WritesItsInput,
            r"run\(\) wrote into the image it was given \(3072 pixels, "
            r"\d+ outside the hole\); work on a copy",
        ),
        (WritesItsMask, r"run\(\) changed the mask it was given"),
    ],
)
def test_check_method_checks_the_raw_output_of_run(method: type, message: str) -> None:
    with pytest.raises(
        AssertionError,
        match=rf"method '{method.info.name}' breaks the contract "
        rf"\(uint8 \(48, 64\)\): .*{message}",
    ):
        check_method(method)
    # inpaint() alone hides all but the wrong shape: it pastes only the hole and converts.
    if method is not WrongShape:
        image = np.rint(contract_image()[:, :, :3] * 255).astype(np.uint8)
        restored = inpaint_core.inpaint(image, contract_mask(), method())
        assert restored.dtype == np.uint8 and np.array_equal(
            restored[~contract_mask()], image[~contract_mask()]
        )
