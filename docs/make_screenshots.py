"""Make the screenshots of docs/napari.md and time Run -> first preview pixels.

Run it from the repository root (it starts a virtual X display with pyvirtualdisplay when
there is none, as pytest-xvfb does)::

    QT_API=pyqt6 .venv/bin/python docs/make_screenshots.py [--learned partial-conv-unet]

It opens the synthetic damaged mural (2048 x 2048) in a shown napari viewer with the Inpaint
dock widget and writes ``docs/napari-widget.png`` (the widget with the grouped method picker
open), ``docs/napari-progress.png`` (a learned method's run in progress, its tiles filling the
preview) and ``docs/napari-compare.png`` (the difference view of a telea result and its
source). It logs the seconds from pressing Run to the first preview pixels for ``telea`` and
for the learned method, and writes them to ``docs/napari-timings.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent
logger = logging.getLogger("make_screenshots")


def wait(condition: Any, timeout: float) -> None:
    """Process Qt events until ``condition()`` or ``timeout`` seconds."""
    from qtpy.QtWidgets import QApplication

    end = time.monotonic() + timeout
    while not condition() and time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.02)


def grab(viewer: Any, target: Path) -> None:
    """The main window with any open popup (a screen grab over the window's area)."""
    from qtpy.QtGui import QGuiApplication

    window = viewer.window._qt_window
    wait(lambda: False, 0.5)
    geometry = window.frameGeometry()
    screen = QGuiApplication.primaryScreen()
    picture = screen.grabWindow(0, geometry.x(), geometry.y(), geometry.width(),
                                geometry.height())  # fmt: skip
    picture.save(str(target))
    logger.info("wrote %s", target)


def timed_run(widget: Any, method: str, timeout: float) -> float | None:
    """Press Run with ``method`` (in a thread_worker) and return Run -> first preview pixels."""
    widget.method.value = method
    widget.run_button.native.click()
    wait(lambda: widget.first_pixels_seconds is not None or not widget.busy, timeout)
    return widget.first_pixels_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learned", default="partial-conv-unet", help="learned method to time")
    parser.add_argument("--size", type=int, default=2048, help="mural side in px")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    display = None
    if not os.environ.get("DISPLAY"):
        from pyvirtualdisplay import Display

        display = Display(visible=False, size=(1600, 1000), color_depth=24)
        display.start()
    try:
        run(args.learned, args.size)
    finally:
        if display is not None:
            display.stop()


def run(learned: str, size: int) -> None:
    """Make the pictures and the timings (see the module docstring)."""
    import napari

    from napari_inpaint import _sample_data
    from napari_inpaint._widget import InpaintWidget

    _sample_data.MURAL_SIZE = size
    viewer = napari.Viewer(show=True)
    widget = InpaintWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Inpaint", area="right")
    viewer.window._qt_window.resize(1500, 950)
    viewer.window._qt_window.move(0, 0)
    for data, kwargs, kind in _sample_data.mural():
        getattr(viewer, f"add_{kind}")(data, **kwargs)
    viewer.reset_view()
    timings: dict[str, Any] = {"image": f"{size} x {size} mural (sample data)"}

    timings["telea"] = timed_run(widget, "telea", 300)
    wait(lambda: not widget.busy, 600)
    logger.info("telea: Run -> first preview pixels %.2f s", timings["telea"])

    widget.method.value = learned
    widget.device.value = "cpu"
    timings[learned] = timed_run(widget, learned, 600)
    logger.info("%s: Run -> first preview pixels %.2f s", learned, timings[learned])
    wait(lambda: widget._progress is not None and widget._progress.n >= 3, 120)
    viewer.layers["mural damage"].visible = False
    grab(viewer, DOCS / "napari-progress.png")
    widget.cancel()
    wait(lambda: not widget.busy, 120)

    widget.session.show_difference()
    for layer in viewer.layers:
        layer.visible = layer.name.startswith("difference") or layer.name == "mural"
    viewer.layers[-1].opacity = 0.9
    grab(viewer, DOCS / "napari-compare.png")

    for layer in viewer.layers:
        layer.visible = layer.name.startswith("telea")
    widget.method.value = "telea"
    widget.method.native.showPopup()
    grab(viewer, DOCS / "napari-widget.png")
    widget.method.native.hidePopup()
    (DOCS / "napari-timings.json").write_text(json.dumps(timings, indent=1) + "\n")
    viewer.close()


if __name__ == "__main__":
    main()
