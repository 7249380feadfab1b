"""The dock widget's method picker rows: active weights, devices and estimates (see
:mod:`napari_inpaint._methods`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from inpaint_core.method import MethodInfo
from napari_inpaint._layers import is_big
from napari_inpaint._methods import is_header, method_entries
from napari_inpaint._weights import entries_for, is_installed, shipped_weights


class PickerRows:
    """Mixin of :class:`~napari_inpaint._widget.InpaintWidget`: the method picker's rows.
    Expects the widget's ``method``, ``device``, ``masks``, ``costs`` and weights state."""

    def _method_choices(self, *_: Any) -> list[tuple[str, str]]:
        """The picker's rows: headers and methods (see :mod:`napari_inpaint._methods`)."""
        from inpaint_core.api import list_methods, method_plugin
        from inpaint_core.plugins import DEFAULT_PLUGINS

        infos = list_methods()
        weights = {info.name: self._weights_of(info.name) for info in infos if info.learned}
        estimates = {info.name: self._estimate(info) for info in infos}
        return method_entries(infos, method_plugin, set(DEFAULT_PLUGINS), weights, estimates)

    def _weights_of(self, method: str) -> str | None:
        """The short name of the weights ``method`` runs with: the picker's last choice for
        it, else its default (shipped: lite; else the first installed catalogue entry)."""
        if method in self._active_weights:
            return self._active_weights[method]
        if shipped_weights(method) is not None:
            return "lite"
        installed = [e.name for e in entries_for(method) if is_installed(e.name)]
        return installed[0] if installed else None

    def _device_of(self, info: MethodInfo) -> str:
        """The device ``info``'s method would run on ("cpu" for a method without one)."""
        if "device" not in {p.name for p in info.parameters}:
            return "cpu"
        from inpaint_core.devices import resolve_device

        try:
            return str(resolve_device(self.device.value))
        except Exception:  # e.g. CUDA chosen but absent: no estimate
            return str(self.device.value)

    def _estimate(self, info: MethodInfo) -> float | None:
        """Seconds to restore the chosen image with ``info``'s method, from its measured cost
        and the window pixels of its tile plan (None: not measured, or no mask yet)."""
        pixels = self._window_pixels(info)
        if pixels is None:
            return None
        return self.costs.estimate(info.name, self._device_of(info), pixels)

    def _window_pixels(self, info: MethodInfo) -> int | None:
        from napari_inpaint._tiles import plan_image

        geometry = (info.preferred_tile, info.context_margin, info.pad_multiple)
        if self._pixels is None:
            self._pixels = {}
        if geometry not in self._pixels:
            try:
                layer = self.image_layer()
                if is_big(layer, self.tiled_pixels):
                    return None
                hole = np.asarray(self.masks.combined_mask(layer)) != 0
                shape = (int(hole.shape[0]), int(hole.shape[1]))
                self._pixels[geometry] = plan_image(shape, hole, info).window_pixels
            except Exception:  # no image, no mask, an all-hole mask...: no estimate
                return None
        return self._pixels[geometry]

    def _disable_headers(self, *_: Any) -> None:
        """Make the picker's header rows unselectable."""
        native = self.method.native
        model = native.model()
        for row in range(native.count()):
            if is_header(native.itemData(row)):
                item = model.item(row)
                if item is not None and item.isEnabled():
                    item.setEnabled(False)
