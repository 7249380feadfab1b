"""``backend=auto``, the default: eager unless the caller (the tiled engine) announces enough
windows of one size to repay compiling for it; and the engine's announcement is what it runs."""

from __future__ import annotations

import threading
import time
import weakref
from collections import Counter, OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import inpaint_core  # noqa: E402
from inpaint_core import backends  # noqa: E402
from inpaint_core.backends import Backend, parse_backend  # noqa: E402
from inpaint_core.errors import ParameterError  # noqa: E402
from inpaint_core.masks import make_mask  # noqa: E402
from inpaint_core.tiling.engine import restore_scan  # noqa: E402

from .engine_helpers import CHUNK, LocalMean, write_store  # noqa: E402


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> list[torch.nn.Module]:
    """Every module handed to ``torch.compile`` (returned uncompiled: the choice is tested
    here, compile's equality with eager in test_backends.py), with a fresh view cache."""
    handed: list[torch.nn.Module] = []

    def fake_compile(module: torch.nn.Module, **_: Any) -> torch.nn.Module:
        handed.append(module)
        return module

    monkeypatch.setattr(backends.torch, "compile", fake_compile)
    monkeypatch.setattr(backends, "_compiled", weakref.WeakKeyDictionary())
    return handed


def test_auto_is_the_default_and_a_valid_name() -> None:
    assert parse_backend("auto") is Backend.AUTO
    with pytest.raises(ParameterError, match="auto, eager, compile, onnx"):
        parse_backend("fast")
    for info in inpaint_core.list_methods():
        if info.learned:
            backend = next(p for p in info.parameters if p.name == "backend")
            assert backend.default == "auto", info.name


def test_auto_compiles_a_size_only_when_enough_windows_of_it_are_expected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lama_class = inpaint_core.get_method("lama")
    monkeypatch.setattr(lama_class, "compile_after_pixels", 10 * 504 * 304)
    method = lama_class(device="cpu")
    # 500 x 300 pads to 504 x 304 (LaMa pads to multiples of 8): the counts add up per size
    method.expect_windows({(500, 300): 6, (504, 304): 4, (200, 200): 38, (1000, 1000): 2})
    assert method.auto_backend((1, 3, 504, 304), "cpu") is Backend.COMPILE  # 10 windows
    assert method.auto_backend((1, 3, 200, 200), "cpu") is Backend.EAGER  # fewer pixels
    assert method.auto_backend((1, 3, 1000, 1000), "cpu") is Backend.COMPILE  # 2 big ones
    assert method.auto_backend((2, 3, 64, 64), "cpu") is Backend.EAGER  # never announced
    assert method.auto_backend((1, 3, 504, 304), "cuda") is Backend.EAGER  # not measured
    assert lama_class(device="cpu").auto_backend((1, 3, 504, 304), "cpu") is Backend.EAGER
    mi_gan = inpaint_core.get_method("mi-gan")
    assert mi_gan.compile_after_pixels is None  # its input follows the hole's crop: never compiled
    migan = mi_gan(device="cpu")
    migan.expect_windows({(512, 512): 10_000})
    assert migan.auto_backend((1, 3, 512, 512), "cpu") is Backend.EAGER


def test_published_break_even_counts_are_set_for_the_measured_methods() -> None:
    for name in ("lama", "edge-gan"):
        after = inpaint_core.get_method(name).compile_after_pixels
        assert isinstance(after, int) and after > 512 * 512, name


def test_one_image_runs_eager_under_auto(
    monkeypatch: pytest.MonkeyPatch, lama_weights: str, compiles: list[torch.nn.Module]
) -> None:
    monkeypatch.setattr(inpaint_core.get_method("lama"), "compile_after_pixels", 1)
    image = np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    hole = make_mask("free_form", (48, 48), 0.2, seed=0)
    inpaint_core.inpaint(image, hole, "lama", weights=lama_weights, device="cpu")
    assert compiles == []  # nothing announced: a single image never pays a compilation


def test_a_tiled_restore_compiles_the_sizes_it_runs_often(
    monkeypatch: pytest.MonkeyPatch, lama_weights: str, compiles: list[torch.nn.Module],
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    shape = (448, 576)  # LaMa's 128 px margin: 320 px windows restore 64 px cores
    image = np.random.default_rng(1).integers(0, 256, (*shape, 3), dtype=np.uint8)
    scan = write_store(tmp_path / "scan.zarr", image, (CHUNK, CHUNK, 3))
    mask = write_store(tmp_path / "mask.zarr", make_mask("free_form", shape, 0.05, seed=1),
                       (CHUNK, CHUNK))
    lama_class = inpaint_core.get_method("lama")
    announced: list[Counter[tuple[int, int]]] = []
    chosen: dict[tuple[int, int], Backend] = {}
    expect, pick = lama_class.expect_windows, lama_class.auto_backend

    def recording_expect(self: Any, shapes: Any) -> None:
        announced.append(Counter({self.padded_shape(*shape): 0 for shape in shapes}))
        for shape, count in shapes.items():
            announced[-1][self.padded_shape(*shape)] += count
        expect(self, shapes)

    def recording_pick(self: Any, shape: tuple[int, ...], device: str) -> Backend:
        chosen[tuple(shape[-2:])] = backend = pick(self, shape, device)
        return backend

    monkeypatch.setattr(lama_class, "expect_windows", recording_expect)
    monkeypatch.setattr(lama_class, "auto_backend", recording_pick)
    method = lama_class(weights=lama_weights, device="cpu")
    monkeypatch.setattr(lama_class, "compile_after_pixels", 10**12)
    restore_scan(scan, mask, method, tmp_path / "a.zarr", tile=320)
    counts = announced[-1]
    pixels = {size: count * size[0] * size[1] for size, count in counts.items()}
    top = max(pixels.values())  # compile the size with the most pixels only
    monkeypatch.setattr(lama_class, "compile_after_pixels", top)
    assert compiles == [] and set(chosen.values()) == {Backend.EAGER}
    chosen.clear()
    caplog.set_level("INFO", logger="inpaint_core.backends")
    restore_scan(scan, mask, method, tmp_path / "b.zarr", tile=320)
    assert announced[-1] == counts
    assert set(chosen) == set(counts)  # every announced size ran, nothing else
    for size, backend in chosen.items():
        assert (backend is Backend.COMPILE) == (pixels[size] >= top), size
    assert len(compiles) == 1  # LaMa's one child network, compiled once for the run
    said = [r.getMessage() for r in caplog.records if "torch.compile" in r.getMessage()]
    compiled = sorted(size for size, backend in chosen.items() if backend is Backend.COMPILE)
    assert len(said) == len(compiled) and all("lama: compiling" in text for text in said)


class Recorder(LocalMean):
    """LocalMean that keeps what the engine announces and the windows it then passes."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.announced: list[dict[tuple[int, int], int]] = []
        self.windows: Counter[tuple[int, int]] = Counter()

    def expect_windows(self, shapes: Any) -> None:
        self.announced.append(dict(shapes))

    def run(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        self.windows[mask.shape] += 1
        return super().run(image, mask, rng)


@pytest.mark.parametrize("tile", [64, 96])
def test_the_engine_announces_the_windows_it_runs(scene: dict[str, Any], tile: int) -> None:
    method = Recorder()
    restore_scan(scene["scan"], scene["mask_path"], method, scene["tmp"] / "out.zarr",
                 tile=tile, batch=2)
    assert len(method.announced) == 1
    assert method.announced[0] == dict(method.windows)
    assert sum(method.windows.values()) > 1


def test_threads_run_a_compiled_network_one_at_a_time(
    monkeypatch: pytest.MonkeyPatch, lama_weights: str, tmp_path: Path
) -> None:
    """torch.compile is not thread-safe: with --workers 2 the compiled generator must never be
    entered by two threads at once (the stand-in below records overlapping calls)."""
    inside, most, guard = [0], [0], threading.Lock()

    class Recording(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *args: Any) -> Any:
            with guard:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            time.sleep(0.05)  # long enough for the other worker to arrive
            try:
                return self.inner(*args)
            finally:
                with guard:
                    inside[0] -= 1

    monkeypatch.setattr(backends.torch, "compile", lambda module, **_: Recording(module))
    monkeypatch.setattr(backends, "_compiled", weakref.WeakKeyDictionary())
    shape = (320, 640)
    image = np.random.default_rng(2).integers(0, 256, (*shape, 3), dtype=np.uint8)
    scan = write_store(tmp_path / "scan.zarr", image, (CHUNK, CHUNK, 3))
    mask = write_store(tmp_path / "mask.zarr", make_mask("free_form", shape, 0.05, seed=2),
                       (CHUNK, CHUNK))
    method = inpaint_core.get_method("lama")(weights=lama_weights, device="cpu",
                                             backend="compile")
    result = restore_scan(scan, mask, method, tmp_path / "out.zarr", tile=320, workers=2)
    assert result.tiles > 2 and most[0] == 1


def test_threads_asking_for_the_same_networks_share_one_load(
    monkeypatch: pytest.MonkeyPatch, lama_weights: str
) -> None:
    lama_class = inpaint_core.get_method("lama")
    loads: list[str] = []
    load = lama_class._load

    def slow_load(self: Any, weights: Path, device: str) -> torch.nn.Module:
        loads.append(device)
        time.sleep(0.2)  # both threads are inside load_networks by now
        return load(self, weights, device)

    monkeypatch.setattr(lama_class, "_load", slow_load)
    monkeypatch.setattr("inpaint_core.learned._cache", OrderedDict())  # nothing loaded yet
    got: list[torch.nn.Module] = []
    threads = [
        threading.Thread(target=lambda: got.append(
            lama_class(weights=lama_weights, device="cpu").load_networks("cpu")))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == 2 and got[0] is got[1] and loads == ["cpu"]
