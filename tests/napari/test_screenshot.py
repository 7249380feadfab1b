"""A screenshot of the widget docked beside a restored sample mural is not black.

A hidden viewer's canvas comes out black under Xvfb, so this viewer is shown. The docs'
pictures are made by ``docs/make_screenshots.py``; ``NAPARI_INPAINT_SCREENSHOT=PATH`` keeps
this test's picture at PATH.
"""

from __future__ import annotations

import os

import numpy as np

from napari_inpaint import _sample_data


def test_screenshot_of_the_docked_widget(widget_factory, monkeypatch, tmp_path, qtbot) -> None:
    monkeypatch.setattr(_sample_data, "MURAL_SIZE", 512)
    viewer, widget = widget_factory(show=True)
    viewer.window.resize(1400, 860)
    for data, kwargs, kind in _sample_data.mural():
        getattr(viewer, f"add_{kind}")(data, **kwargs)
    widget.method.value = "telea"
    widget.synchronous = True
    widget.run_button.native.click()
    assert widget.last_error is None
    viewer.layers["mural damage"].visible = False
    viewer.reset_view()
    qtbot.wait(300)  # let Qt lay out the new mask rows before the picture is taken
    target = os.environ.get("NAPARI_INPAINT_SCREENSHOT") or str(tmp_path / "widget.png")
    shot = viewer.screenshot(target, canvas_only=False, flash=False)
    assert shot.shape[0] > 400 and shot[..., :3].mean() > 10  # not a black canvas
    assert np.asarray(shot)[..., :3].std() > 5
