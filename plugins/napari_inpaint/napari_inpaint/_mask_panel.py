"""The mask part of the dock widget: the mask layers with a checkbox each, label restriction,
growing, preview, a new empty mask, and a mask from a brightness or colour threshold.

The damage mask is the OR of the ticked layers, each a Labels layer (optionally only some of
its label values) or a Shapes layer, grown by N pixels. Masks of big or lazy images are dask
arrays (drawn and combined chunk by chunk) and new masks there are zarr-backed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from magicgui import widgets

from napari_inpaint._layers import (
    OWN_KEY,
    image_array,
    image_shape,
    is_big,
    layer_geometry,
    layer_mask,
    new_mask_data,
)
from napari_inpaint.masks import (
    CHANNELS,
    combine_masks,
    grow_mask,
    parse_label_values,
    threshold_mask,
)

PREVIEW_NAME = "combined mask"


class MaskRow(widgets.Container):
    """One mask layer: a checkbox named after it and, for Labels, the label values to use."""

    def __init__(self, layer: Any, ticked: bool = True, values: str = "") -> None:
        import napari

        self.layer = layer
        self.use = widgets.CheckBox(value=ticked, text=layer.name, name="use")
        self.values = widgets.LineEdit(value=values, name="values")
        self.values.tooltip = "label values to use, e.g. 1, 3-5 (empty: every label)"
        self.values.native.setPlaceholderText("every label (or e.g. 1, 3-5)")
        self.values.visible = isinstance(layer, napari.layers.Labels)
        super().__init__(widgets=[self.use, self.values], layout="horizontal", labels=False)
        self.margins = (0, 0, 0, 0)


class MaskPanel(widgets.Container):
    """See the module docstring. ``image_layer`` returns the chosen image layer (or raises);
    ``report`` shows an error."""

    def __init__(
        self, viewer: Any, image_layer: Callable[[], Any],
        report: Callable[[BaseException], None], tiled_pixels: Callable[[], int],
    ) -> None:
        self.viewer = viewer
        self._image_layer = image_layer
        self._report = report
        self._tiled_pixels = tiled_pixels
        self.rows = widgets.Container(labels=False, name="mask_layers")
        self.rows.tooltip = "the ticked layers are combined: a pixel is a hole if any marks it"
        self.grow = widgets.SpinBox(value=0, min=0, max=512, label="grow mask (px)", name="grow")
        self.grow.tooltip = "dilate the combined mask by this many pixels"
        self.new_mask_button = widgets.PushButton(text="New mask layer", name="new_mask")
        self.preview_button = widgets.PushButton(text="Preview mask", name="preview")
        self.channel = widgets.ComboBox(choices=CHANNELS, value="brightness", label="threshold on",
                                        name="channel")
        self.range = widgets.FloatRangeSlider(value=(0.85, 1.0), min=0.0, max=1.0, step=0.01,
                                              label="range", name="range")
        self.threshold_button = widgets.PushButton(text="Mask from threshold", name="threshold")
        buttons = widgets.Container(widgets=[self.new_mask_button, self.preview_button],
                                    layout="horizontal", labels=False)
        buttons.margins = (0, 0, 0, 0)
        super().__init__(widgets=[
            self.rows, self.grow,
            buttons, self.channel, self.range, self.threshold_button,
        ])
        self.new_mask_button.changed.connect(self._guard(self.new_mask_layer))
        self.preview_button.changed.connect(self._guard(self.preview))
        self.threshold_button.changed.connect(self._guard(self.mask_from_threshold))
        self.refresh()

    def _guard(self, action: Callable[[], Any]) -> Callable[..., None]:
        def run(*_: Any) -> None:
            try:
                action()
            except Exception as error:  # shown to the user, never a traceback dialog
                self._report(error)

        return run

    # --- the list of mask layers ------------------------------------------------------------
    def mask_layers(self) -> list[Any]:
        """Labels and Shapes layers, except this plugin's own previews."""
        import napari

        kinds = (napari.layers.Labels, napari.layers.Shapes)
        return [layer for layer in self.viewer.layers if isinstance(layer, kinds)
                and dict(layer.metadata.get(OWN_KEY) or {}).get("role") != "preview"]

    def refresh(self) -> None:
        """Rebuild the rows from the viewer's layers, keeping each layer's tick and values."""
        kept = {id(row.layer): (row.use.value, row.values.value) for row in self.rows}
        old = list(self.rows)
        self.rows.clear()
        for row in old:  # unparented, a visible row would become a stray top-level window
            row.native.hide()
            row.native.deleteLater()
        for layer in self.mask_layers():
            ticked, values = kept.get(id(layer), (True, ""))
            self.rows.append(MaskRow(layer, ticked, values))

    def row(self, layer: Any) -> MaskRow:
        """The row of ``layer`` (a layer or its name)."""
        for row in self.rows:
            if row.layer is layer or row.layer.name == layer:
                return row
        raise KeyError(f"no mask row for layer {layer!r}")

    # --- the combined mask ------------------------------------------------------------------
    def combined_mask(self, image: Any) -> Any:
        """Bool ``(H, W)`` mask of image layer ``image``: the ticked layers ORed, then grown.
        NumPy for small images, a dask array for big or lazy ones.

        Raises:
            InvalidInputError: no layer is ticked, or a mask's shape differs from the image's.
        """
        shape = image_shape(image)
        lazy = is_big(image, self._tiled_pixels())
        masks = []
        for row in self.rows:
            if row.use.value:
                values = parse_label_values(row.values.value)
                masks.append((row.layer.name, layer_mask(row.layer, shape, values, lazy)))
        return grow_mask(combine_masks(masks, shape), int(self.grow.value))

    def preview(self) -> Any:
        """Show the combined mask as its own Labels layer (replacing the previous preview)."""
        image = self._image_layer()
        mask = self.combined_mask(image)
        data = mask.astype(np.uint8)
        for layer in self.viewer.layers:
            if dict(layer.metadata.get(OWN_KEY) or {}).get("role") == "preview":
                layer.data = data
                return layer
        return self.viewer.add_labels(
            data, name=PREVIEW_NAME, opacity=0.5, metadata={OWN_KEY: {"role": "preview"}},
            **layer_geometry(image),
        )

    # --- new masks ------------------------------------------------------------------------
    def new_mask_layer(self, name: str = "mask") -> Any:
        """Add an empty Labels layer matching the image (zarr-backed for a big image), in
        paint mode."""
        image = self._image_layer()
        lazy = is_big(image, self._tiled_pixels())
        data = new_mask_data(image_shape(image), lazy)
        layer = self.viewer.add_labels(data, name=name, **layer_geometry(image))
        layer.mode = "paint"
        return layer

    def mask_from_threshold(self) -> Any:
        """Add a Labels layer marking the image's pixels within the threshold range."""
        image = self._image_layer()
        low, high = self.range.value
        mask = threshold_mask(image_array(image), float(low), float(high), self.channel.value)
        name = f"{self.channel.value} in [{low:.2f}, {high:.2f}]"
        return self.viewer.add_labels(mask.astype(np.uint8), name=name,
                                      **layer_geometry(image))
