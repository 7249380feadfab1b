"""The dock widget's compare views and presets (magicgui, no Qt imports of its own).

- **Difference**: a new layer ``difference: A vs B`` of ``|A - B|`` (the largest channel, in
  [0, 1], magma colour map) between the newest result (A) and the layer chosen in
  **compare with** (default: the result's source; another result compares two results).
- **Split**: a new layer ``split: A | B`` with A left and B right of a vertical line at
  **split at** (a fraction of the width); moving the slider moves the line.
- **Save preset…** / **Load preset…**: the settings record of :mod:`napari_inpaint._presets`
  as a JSON file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from magicgui import widgets

from inpaint_core.errors import InvalidInputError
from napari_inpaint import _presets
from napari_inpaint._layers import OWN_KEY, layer_geometry
from napari_inpaint._results import difference, split


def guarded(owner: Any, action: Callable[[], Any]) -> Callable[..., None]:
    """A signal handler running ``action``; its errors go to ``owner.report`` (the widget's
    notification and status line), never to a traceback dialog."""

    def run(*_: Any) -> None:
        try:
            action()
        except Exception as error:
            owner.report(error)

    return run


class SessionPanel(widgets.Container):
    """Compare and preset controls of the dock widget ``owner`` (an ``InpaintWidget``)."""

    def __init__(self, owner: Any) -> None:
        self.owner = owner
        self.compare_with = widgets.ComboBox(label="compare with", choices=self._layers,
                                             name="compare_with")
        self.compare_with.tooltip = "the layer the newest result is compared with"
        self.difference_button = widgets.PushButton(text="Difference", name="difference")
        self.split_button = widgets.PushButton(text="Split", name="split")
        self.split_at = widgets.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.01,
                                            label="split at", name="split_at")
        self.save_button = widgets.PushButton(text="Save preset…", name="save_preset")
        self.load_button = widgets.PushButton(text="Load preset…", name="load_preset")
        views = widgets.Container(widgets=[self.difference_button, self.split_button],
                                  layout="horizontal", labels=False)
        presets = widgets.Container(widgets=[self.save_button, self.load_button],
                                    layout="horizontal", labels=False)
        for row in (views, presets):
            row.margins = (0, 0, 0, 0)
        super().__init__(widgets=[self.compare_with, views, self.split_at, presets])
        self.margins = (0, 0, 0, 0)
        self.difference_button.changed.connect(self._guard(self.show_difference))
        self.split_button.changed.connect(self._guard(self.show_split))
        self.split_at.changed.connect(self._guard(self._move_split))
        self.save_button.changed.connect(self._guard(lambda: self._ask_path(save=True)))
        self.load_button.changed.connect(self._guard(lambda: self._ask_path(save=False)))
        self._split_layer: Any = None

    def _guard(self, action: Callable[[], Any]) -> Callable[..., None]:
        return guarded(self.owner, action)

    def _layers(self, *_: Any) -> list[tuple[str, Any]]:
        import napari

        return [("source of the result", None)] + [
            (layer.name, layer) for layer in self.owner.viewer.layers
            if isinstance(layer, napari.layers.Image)
            and dict(layer.metadata.get(OWN_KEY) or {}).get("role") in (None, "result")
        ]

    # --- compare ---------------------------------------------------------------------------
    def _pair(self) -> tuple[Any, Any]:
        """The newest result and the layer to compare it with."""
        viewer = self.owner.viewer
        results = [layer for layer in self.owner.results if layer in viewer.layers]
        if not results:
            raise InvalidInputError("no result to compare yet: press Run first")
        result = results[-1]
        other = self.compare_with.value
        if other is None:
            source = dict(result.metadata.get(OWN_KEY) or {}).get("source")
            if source not in viewer.layers:
                raise InvalidInputError(f"the source layer {source!r} of {result.name!r} is gone:"
                                        " choose a layer in 'compare with'")
            other = viewer.layers[source]
        if other is result:
            raise InvalidInputError(f"{result.name!r} compared with itself: choose another layer")
        return result, other

    @staticmethod
    def _pixels(layer: Any) -> Any:
        return layer.data[0] if getattr(layer, "multiscale", False) else layer.data

    def show_difference(self) -> Any:
        """Add the layer ``difference: A vs B`` (see the module docstring)."""
        result, other = self._pair()
        gap = difference(self._pixels(result), self._pixels(other))
        layer = self.owner.viewer.add_image(
            gap, name=f"difference: {result.name} vs {other.name}", colormap="magma",
            contrast_limits=(0.0, max(float(gap.max()), 1e-6)),
            metadata={OWN_KEY: {"role": "compare", "a": result.name, "b": other.name}},
            **layer_geometry(result),
        )
        self.owner.status.value = (f"difference of {result.name!r} and {other.name!r}: largest "
                                   f"{float(gap.max()):.3f}")
        return layer

    def show_split(self) -> Any:
        """Add (or update) the layer ``split: A | B`` (see the module docstring)."""
        result, other = self._pair()
        view = split(self._pixels(other), self._pixels(result), float(self.split_at.value))
        name = f"split: {other.name} | {result.name}"
        viewer = self.owner.viewer
        if self._split_layer is not None and self._split_layer in viewer.layers:
            viewer.layers.remove(self._split_layer)
        extra: dict[str, Any] = {"rgb": result.rgb}
        if not result.rgb:
            extra["contrast_limits"] = result.contrast_limits
        self._split_layer = viewer.add_image(
            view, name=name, metadata={OWN_KEY: {"role": "compare", "a": other.name,
                                                 "b": result.name}},
            **layer_geometry(result), **extra,
        )
        self._split_pair = (result, other)
        return self._split_layer

    def _move_split(self) -> None:
        layer = self._split_layer
        if layer is None or layer not in self.owner.viewer.layers:
            return
        result, other = self._split_pair
        layer.data = split(self._pixels(other), self._pixels(result), float(self.split_at.value))

    # --- presets ---------------------------------------------------------------------------
    def _ask_path(self, save: bool) -> None:
        from magicgui.types import FileDialogMode

        mode = FileDialogMode.OPTIONAL_FILE if save else FileDialogMode.EXISTING_FILE
        path = widgets.show_file_dialog(mode, caption="napari-inpaint preset", filter="*.json")
        if path:
            (self.save_preset if save else self.load_preset)(path)

    def save_preset(self, path: str | Path) -> Path:
        """Write the widget's settings record to ``path`` (JSON)."""
        target = _presets.save(self.owner.settings_record(), path)
        self.owner.status.value = f"preset saved: {target}"
        return target

    def load_preset(self, path: str | Path) -> dict[str, Any]:
        """Set the widget from the record in ``path``: method, parameters, weights, mask
        layers and their label filters, grow. Mask layers it names that are not open are said
        on the status line."""
        record = _presets.load(path)
        missing = self.owner.apply_settings(record)
        note = f"; not open: {', '.join(missing)}" if missing else ""
        self.owner.status.value = f"preset loaded: {Path(path).name}{note}"
        return record
