"""Region preview: restore only a region first, in seconds, before the whole image.

The region is the last rectangle of the Shapes layer chosen in **preview region**, or the part
of the image in view (from the camera's centre and zoom and the canvas size), in the image's
pixels and clipped to it. The method runs on a crop of the image and of the combined mask: the
region with the method's context margin around it (clipped), through the same tile plan as a
full run (:func:`napari_inpaint._workers.restore_in_memory`), so for a local method the
preview equals the full run's result inside the region wherever the holes the region touches
lie within that margin. Only the region is shown, as the temporary image layer ``preview:
METHOD (WEIGHTS) IMAGE`` placed at the region's offset; a new preview replaces it.

**Accept** removes the preview and runs the full restoration (the Run button's path);
**Discard** removes it. A preview is *stale* once the image, method, parameters, weights, mask
layers, label filters, grow or tile differ from those it was made with: the status line says
so, its layer's metadata says ``"stale": true`` and Accept is disabled until the settings match
again or a new preview is made (the layer stays, to compare with).

The region arithmetic (:func:`pixel_box`, :func:`view_box`, :func:`rectangle_box`,
:func:`with_margin`) has no Qt; the panel is magicgui only.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from magicgui import widgets

from inpaint_core.errors import InvalidInputError
from inpaint_core.tiling import Box
from napari_inpaint._layers import OWN_KEY, TILED_PIXELS, image_array, image_shape
from napari_inpaint._results import result_name
from napari_inpaint._session import guarded
from napari_inpaint._workers import restore_in_memory

#: ``metadata[OWN_KEY]["role"]`` of a preview layer.
ROLE = "region-preview"
#: The **preview region** choice for the part of the image in view.
VIEW = "the view"
#: A region with more pixels is refused: a preview is restored in memory.
PREVIEW_PIXELS = TILED_PIXELS


def pixel_box(corners: Sequence[Sequence[float]], shape: tuple[int, int]) -> Box:
    """The pixels of an ``(H, W)`` = ``shape`` image whose centres lie in the bounding box
    ``[min, max)`` of ``corners`` (``(row, col)`` data coordinates; pixel ``i`` spans
    ``[i - 0.5, i + 0.5]``), clipped to the image.

    Raises:
        InvalidInputError: the box holds no pixel of the image.
    """
    points = np.asarray(corners, dtype=float).reshape(-1, 2)
    low, high = points.min(axis=0), points.max(axis=0)
    row0, col0 = (max(0, math.ceil(v)) for v in low)
    row1 = min(shape[0], math.ceil(high[0]))
    col1 = min(shape[1], math.ceil(high[1]))
    if row1 <= row0 or col1 <= col0:
        raise InvalidInputError(
            f"the preview region (rows {low[0]:.1f} to {high[0]:.1f}, columns {low[1]:.1f} to "
            f"{high[1]:.1f}) does not overlap the {shape[0]} x {shape[1]} image: move the view "
            "or the rectangle onto it"
        )
    return Box(row0, row1, col0, col1)


def view_box(to_data: Callable[[np.ndarray], Sequence[float]], center: Sequence[float],
             zoom: float, canvas: Sequence[int], shape: tuple[int, int]) -> Box:
    """The pixels of an image in view: the canvas ``(height, width)`` in screen pixels around
    the camera's ``center`` (world coordinates, the last two used) at ``zoom`` (screen pixels
    per world unit), its corners taken to the image's data coordinates by ``to_data``."""
    middle = np.asarray(center, dtype=float)[-2:]
    half = np.asarray(canvas, dtype=float)[-2:] / (2.0 * float(zoom))
    corners = [middle + half * np.array(sign) for sign in ((-1, -1), (-1, 1), (1, -1), (1, 1))]
    return pixel_box([np.asarray(to_data(c), dtype=float)[-2:] for c in corners], shape)


def rectangle_box(layer: Any, image: Any, shape: tuple[int, int]) -> Box:
    """The pixels of ``image`` (a layer of ``shape`` pixels) under the last rectangle of the
    Shapes ``layer``, through both layers' transforms.

    Raises:
        InvalidInputError: the layer has no rectangle.
    """
    kinds = list(layer.shape_type)
    found = [i for i, kind in enumerate(kinds) if kind == "rectangle"]
    if not found:
        raise InvalidInputError(
            f"shapes layer {layer.name!r} has no rectangle: draw one with its rectangle tool, or "
            f"choose '{VIEW}' as the preview region"
        )
    vertices = np.asarray(layer.data[found[-1]], dtype=float)
    corners = [image.world_to_data(layer.data_to_world(v)) for v in vertices]
    return pixel_box([np.asarray(c, dtype=float)[-2:] for c in corners], shape)


def with_margin(box: Box, margin: int, shape: tuple[int, int]) -> Box:
    """``box`` grown by ``margin`` pixels on each side, clipped to ``shape``."""
    return Box(max(0, box.row0 - margin), min(shape[0], box.row1 + margin),
               max(0, box.col0 - margin), min(shape[1], box.col1 + margin))


def camera_view(viewer: Any) -> tuple[Sequence[float], float, tuple[int, int]]:
    """The camera's centre and zoom and the canvas ``(height, width)`` of ``viewer``."""
    scene = getattr(viewer, "scene", None)  # napari >= 0.9; viewer.camera before
    camera = scene.camera if scene is not None else viewer.camera
    size = getattr(viewer.canvas, "size", None) if hasattr(viewer, "canvas") else None
    if size is None:
        size = viewer._canvas_size  # napari < 0.9
    return tuple(camera.center), float(camera.zoom), (int(size[0]), int(size[1]))


class RegionPreview(widgets.Container):
    """The **preview region** choice and **Preview region**, **Accept**, **Discard** of the
    dock widget ``owner`` (an ``InpaintWidget``); see the module docstring."""

    def __init__(self, owner: Any) -> None:
        self.owner = owner
        self.layer: Any = None  # the preview layer
        self.stale = False
        self.region = widgets.ComboBox(label="preview region", choices=self._regions,
                                       name="preview_region")
        self.region.tooltip = ("the part of the image in view, or the last rectangle of a "
                               "Shapes layer")
        self.preview_button = widgets.PushButton(text="Preview region", name="preview_region_run")
        self.preview_button.tooltip = "restore only the region first, into a temporary layer"
        self.accept_button = widgets.PushButton(text="Accept", name="accept", enabled=False)
        self.accept_button.tooltip = "remove the preview and restore the whole image"
        self.discard_button = widgets.PushButton(text="Discard", name="discard", enabled=False)
        buttons = widgets.Container(
            widgets=[self.preview_button, self.accept_button, self.discard_button],
            layout="horizontal", labels=False,
        )
        buttons.margins = (0, 0, 0, 0)
        super().__init__(widgets=[self.region, buttons])
        self.margins = (0, 0, 0, 0)
        self.region.changed.connect(self._guard(self._region_chosen))
        self.preview_button.changed.connect(self._guard(self.preview))
        self.accept_button.changed.connect(self._guard(self.accept))
        self.discard_button.changed.connect(self._guard(self.discard))
        events = owner.viewer.layers.events
        for event in (events.inserted, events.removed):
            event.connect(self._layers_changed)

    def watch(self) -> None:
        """Re-check staleness whenever a setting changes (after the owner's own handlers)."""
        owner = self.owner
        for signal in (owner.image.changed, owner.method.changed, owner.params.changed,
                       owner.device.changed, owner.tile.changed, owner.masks.changed):
            signal.connect(self.check_stale)

    def _guard(self, action: Callable[[], Any]) -> Callable[..., None]:
        return guarded(self.owner, action)

    def _regions(self, *_: Any) -> list[tuple[str, Any]]:
        import napari

        return [(VIEW, None)] + [(layer.name, layer) for layer in self.owner.viewer.layers
                                 if isinstance(layer, napari.layers.Shapes)]

    def _layers_changed(self, *_: Any) -> None:
        try:
            self.region.reset_choices()
            if self.layer is not None and self.layer not in self.owner.viewer.layers:
                self.layer = None  # the user deleted it
            self._enable()
        except RuntimeError:  # the dock widget was closed (its Qt objects are gone)
            events = self.owner.viewer.layers.events
            for event in (events.inserted, events.removed):
                event.disconnect(self._layers_changed)

    def _region_chosen(self) -> None:
        """A Shapes layer chosen as the region is unticked as a mask layer (its rectangle
        would be a hole), saying so."""
        layer = self.region.value
        if layer is None:
            return
        try:
            row = self.owner.masks.row(layer)
        except KeyError:
            return
        if row.use.value:
            row.use.value = False
            self.owner.status.value = (f"{layer.name!r} is the preview region: unticked as a "
                                       "mask layer")

    # --- state -------------------------------------------------------------------------------
    def _key(self) -> Any:
        """What a preview depends on: the image, the tile side and the settings record."""
        owner = self.owner
        record = dict(owner.settings_record())
        record.pop("versions", None)
        return owner.image_layer().name, int(owner.tile.value), record

    def check_stale(self, *_: Any) -> None:
        """Mark the preview stale (or fresh again) after a change of the settings."""
        if self.layer is None or self.owner.busy:
            return
        try:
            stale = self._key() != self.layer.metadata[OWN_KEY].get("key")
        except Exception:  # a setting that cannot be read (e.g. no image): not what it was
            stale = True
        if stale == self.stale:
            return
        self.stale = stale
        self.layer.metadata[OWN_KEY]["stale"] = stale
        self.owner.status.value = (
            "preview stale: the settings changed since it was made; Preview region again, "
            "or Discard it" if stale else "preview matches the settings again: Accept runs them"
        )
        self._enable()

    def set_busy(self, busy: bool) -> None:
        """Enable the buttons that apply while work runs (none) or not."""
        self.preview_button.enabled = not busy
        self._enable(busy)
        if not busy:
            self.check_stale()  # settings changed while the work ran

    def _enable(self, busy: bool | None = None) -> None:
        busy = self.owner.busy if busy is None else busy
        present = self.layer is not None
        self.accept_button.enabled = present and not busy and not self.stale
        self.discard_button.enabled = present and not busy

    # --- actions -----------------------------------------------------------------------------
    def region_box(self, layer: Any) -> Box:
        """The region of image ``layer`` to preview (see the module docstring)."""
        shape = image_shape(layer)
        shapes = self.region.value
        if shapes is not None:
            if shapes not in self.owner.viewer.layers:
                raise InvalidInputError(f"the preview region layer {shapes.name!r} is gone")
            return rectangle_box(shapes, layer, shape)
        center, zoom, canvas = camera_view(self.owner.viewer)
        return view_box(layer.world_to_data, center, zoom, canvas, shape)

    def preview(self) -> None:
        """Restore the region only (the Preview region button), through the owner's runner."""
        owner = self.owner
        layer = owner.image_layer()
        method = owner.method.value
        params = owner.method_params()
        key = self._key()
        box = self.region_box(layer)
        if box.height * box.width > PREVIEW_PIXELS:
            raise InvalidInputError(
                f"the preview region is {box.height} x {box.width} pixels: too big for a "
                "preview; zoom in or draw a smaller rectangle"
            )
        shape = image_shape(layer)
        window = with_margin(box, owner.method_info().context_margin, shape)
        hole = np.asarray(owner.masks.combined_mask(layer)[window.slices]) != 0
        if not hole[box.slices_in(window)].any():
            raise InvalidInputError("the preview region has no hole: move the view or the "
                                    "rectangle onto the damage")
        image = np.asarray(image_array(layer)[window.slices])
        output = image.copy()
        stop = threading.Event()
        work = restore_in_memory(image, hole, method, params, stop, tile=int(owner.tile.value),
                                 output=output)

        def done(restored: Any) -> None:
            self._show(layer, restored, box, window, key)

        owner._start(work, stop, f"{method}: preview", done,
                     cancelled="cancelled: the preview stopped; nothing was changed")
        owner._show_running(layer, output, method, self._geometry(layer, window))

    @staticmethod
    def _geometry(source: Any, box: Box) -> dict[str, Any]:
        """``scale`` and ``translate`` placing an array of ``box``'s pixels over ``source``."""
        scale = np.asarray(source.scale, dtype=float)[-2:]
        offset = np.asarray(source.translate, dtype=float)[-2:] + scale * (box.row0, box.col0)
        return {"scale": tuple(scale), "translate": tuple(float(v) for v in offset)}

    def _show(self, source: Any, restored: Any, box: Box, window: Box, key: Any) -> None:
        """Show the region of ``restored`` (a crop of ``window``) as the preview layer."""
        owner = self.owner
        running, owner._running_layer = owner._running_layer, None
        if running is not None and running in owner.viewer.layers:
            owner.viewer.layers.remove(running)
        self._remove()
        pixels = np.ascontiguousarray(restored.image[box.slices_in(window)])
        region = {"rows": [box.row0, box.row1], "cols": [box.col0, box.col1]}
        metadata = {OWN_KEY: {
            "role": ROLE, "preview": True, "source": source.name, "method": restored.method,
            "region": region, "window": {"rows": [window.row0, window.row1],
                                         "cols": [window.col0, window.col1]},
            "weights": restored.weights, "stale": False, "key": key,
        }}
        extra: dict[str, Any] = {"rgb": source.rgb}
        if not source.rgb:
            extra["contrast_limits"] = source.contrast_limits
        name = "preview: " + result_name(restored.method, restored.weights, source.name)
        self.layer = owner.viewer.add_image(pixels, name=name, metadata=metadata,
                                            **self._geometry(source, box), **extra)
        self.stale = False
        if restored.seconds_per_pixel and owner.method.value == restored.method:
            owner.costs.record(restored.method, owner._device_of(owner.method_info()),
                               restored.seconds_per_pixel)
            owner.method.reset_choices()
        owner.status.value = (f"preview of rows {box.row0}-{box.row1}, columns {box.col0}-"
                              f"{box.col1} in {restored.seconds:.1f} s: Accept runs the whole "
                              "image, Discard removes it")
        self._enable(False)

    def _remove(self) -> None:
        layer, self.layer = self.layer, None
        self.stale = False
        if layer is not None and layer in self.owner.viewer.layers:
            self.owner.viewer.layers.remove(layer)

    def accept(self) -> None:
        """Remove the preview and restore the whole image with the same settings (Run)."""
        if self.layer is None:
            raise InvalidInputError("no preview to accept: press Preview region first")
        self.check_stale()
        if self.stale:
            raise InvalidInputError("the preview is stale (the settings changed since it was "
                                    "made): Preview region again, or press Run")
        self._remove()
        self._enable()
        self.owner.run()

    def discard(self) -> None:
        """Remove the preview layer."""
        self._remove()
        self._enable()
        self.owner.status.value = "preview discarded"
