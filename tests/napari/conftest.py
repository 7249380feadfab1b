"""Fixtures of the napari tests: a viewer with the dock widget, small images, test methods.

The tests run headless under a virtual X server (pytest-xvfb): napari's Qt canvas needs a
real display connection once an Image layer is added.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

#: A test-only third-party method with one parameter of every schema type.
SCHEMA_PLUGIN = """
    import numpy as np
    from inpaint_core import Family, InpaintMethod, MethodInfo, Parameter, ParamType, hookimpl

    class FlatFill(InpaintMethod):
        info = MethodInfo(
            name="flat-fill", family=Family.OTHER, summary="Test only: fills with a constant.",
            reference="none",
            parameters=(
                Parameter("level", ParamType.FLOAT, 0.25, "grey level", minimum=0.0, maximum=1.0),
                Parameter("passes", ParamType.INT, 2, "repeats", minimum=1, maximum=9),
                Parameter("invert", ParamType.BOOL, False, "use 1 - level"),
                Parameter("style", ParamType.CHOICE, "flat", "how", choices=("flat", "noisy")),
                Parameter("note", ParamType.STR, "hi", "free text"),
                Parameter("table", ParamType.PATH, None, "optional file"),
            ),
        )

        def run(self, image, mask, rng):
            level = self.params["level"]
            return np.full_like(image, 1.0 - level if self.params["invert"] else level)

    @hookimpl
    def register_inpaint_methods(register):
        register(FlatFill)
"""

#: A test-only method that takes ``seconds`` to fill (for Cancel).
SLOW_PLUGIN = """
    import time
    from inpaint_core import Family, InpaintMethod, MethodInfo, Parameter, ParamType, hookimpl

    class Slow(InpaintMethod):
        info = MethodInfo(
            name="slow-fill", family=Family.OTHER, summary="Test only: sleeps, then copies.",
            reference="none", preferred_tile=64, context_margin=4,
            parameters=(Parameter("seconds", ParamType.FLOAT, 3.0, "sleep", minimum=0.0),),
        )

        def run(self, image, mask, rng):
            time.sleep(self.params["seconds"])
            return image

    @hookimpl
    def register_inpaint_methods(register):
        register(Slow)
"""


@pytest.fixture(autouse=True)
def needs_display(request: pytest.FixtureRequest) -> None:
    """Skip the tests that open a viewer when there is no display (no Xvfb for pytest-xvfb);
    with ``INPAINT_REQUIRE_DISPLAY=1`` (set by ``make test``, so CI) they fail instead."""
    if "make_napari_viewer" in request.fixturenames and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        reason = "no X display: install xvfb (`make install-test` as root) for pytest-xvfb"
        if os.environ.get("INPAINT_REQUIRE_DISPLAY") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture
def widget_factory(make_napari_viewer: Callable[..., Any]) -> Callable[..., tuple[Any, Any]]:
    """``make(show=False)`` -> ``(viewer, widget)``: the dock widget docked in a new viewer."""
    from napari_inpaint._widget import InpaintWidget

    def make(show: bool = False) -> tuple[Any, Any]:
        viewer = make_napari_viewer(show=show)
        widget = InpaintWidget(viewer)
        viewer.window.add_dock_widget(widget, name="Inpaint")
        return viewer, widget

    return make


@pytest.fixture
def picture() -> np.ndarray:
    """uint8 ``(48, 64, 3)``: smooth colours with some texture."""
    rows, cols = np.mgrid[0:48, 0:64].astype(np.float64)
    image = np.stack([rows / 47, cols / 63, 0.5 + 0.4 * np.sin(cols / 5 + rows / 7)], axis=2)
    return np.rint(image * 255).astype(np.uint8)

#: A test-only method that raises the exception class named by its ``error`` parameter.
FAILING_PLUGIN = """
    from inpaint_core import Family, InpaintMethod, MethodInfo, Parameter, ParamType, hookimpl

    class Failing(InpaintMethod):
        info = MethodInfo(
            name="failing-fill", family=Family.OTHER, summary="Test only: raises.",
            reference="none",
            parameters=(Parameter("error", ParamType.CHOICE, "RuntimeError", "what to raise",
                                  choices=("RuntimeError", "ValueError")),),
        )

        def run(self, image, mask, rng):
            kind = {"RuntimeError": RuntimeError, "ValueError": ValueError}[self.params["error"]]
            raise kind("CUDA out of memory (test)")

    @hookimpl
    def register_inpaint_methods(register):
        register(Failing)
"""


@pytest.fixture(autouse=True)
def own_costs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test measures method costs into its own file, never the user's."""
    folder = tmp_path_factory.mktemp("costs")
    monkeypatch.setenv("NAPARI_INPAINT_COSTS", str(folder / "napari-costs.json"))


def scattered_holes(viewer: Any, shape: tuple[int, int] = (256, 256)) -> Any:
    """An image and a mask with 16 small holes far apart: 16 tiles of 64 px for slow-fill."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    image = ((rows + cols) % 256).astype(np.uint8)
    viewer.add_image(image, name="grey")
    mask = np.zeros(shape, dtype=np.uint8)
    for row in range(20, shape[0], 64):
        for col in range(20, shape[1], 64):
            mask[row : row + 4, col : col + 4] = 1
    return viewer.add_labels(mask, name="mask")


def slow_fill_widget(
    widget_factory: Callable[..., tuple[Any, Any]],
    make_plugin: Callable[[str, str], Any],
    seconds: float,
    keep: Callable[[Any], Any] = lambda event: event,
) -> tuple[Any, Any, list[Any]]:
    """``(viewer, widget, kept)``: the widget on :func:`scattered_holes` with ``slow-fill``
    taking ``seconds`` a tile; ``kept`` collects ``keep(event)`` of every progress event."""
    make_plugin("slow", SLOW_PLUGIN)
    viewer, widget = widget_factory()
    scattered_holes(viewer)
    widget.method.value = "slow-fill"
    {w.name: w for w in widget.params}["seconds"].value = seconds
    kept: list[Any] = []
    original = widget._on_progress
    widget._on_progress = lambda event: (kept.append(keep(event)), original(event))
    return viewer, widget, kept


def add_picture_and_mask(viewer: Any, picture: np.ndarray, rows: slice, cols: slice) -> Any:
    """Add ``picture`` as the RGB layer "picture" and a Labels layer "mask" that is 1 on
    ``[rows, cols]``; return the mask layer."""
    viewer.add_image(picture, name="picture", rgb=True)
    mask = viewer.add_labels(np.zeros(picture.shape[:2], dtype=np.uint8), name="mask")
    mask.data[rows, cols] = 1
    return mask
