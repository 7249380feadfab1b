"""The dock widget: pick an image, a method and its parameters, combine mask layers, run.

Methods come from the plugin registry (built-in and third-party alike), grouped by family;
their inputs are generated from the parameter schema (:mod:`napari_inpaint._params`). Work
runs as a generator of :mod:`napari_inpaint._workers` in a napari ``thread_worker`` (or in the
calling thread with ``synchronous = True``, for tests), feeding napari's progress bar. An
in-memory image is restored tile by tile with the tiled engine's plan, into a live preview
layer that becomes the result; Cancel stops the computation within one tile and nothing is
added. The source is never modified. Errors of every type appear in napari's notifications
with the CLI's messages; the status line keeps the outcome (done, cancelled, error).

A learned method's ``weights`` is a picker (:mod:`napari_inpaint._weights`): shipped, a
published catalogue entry or a file, with its licence shown; "Get weights…" downloads and
installs an entry in the same worker, with progress and Cancel. A result layer's metadata
names the weights it was made with and their sha256.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui import widgets

from inpaint_core.errors import InvalidInputError, ParameterError
from inpaint_core.method import MethodInfo
from inpaint_core.weights import fetch, get_entry
from napari_inpaint._layers import (
    OWN_KEY,
    TILED_PIXELS,
    image_array,
    is_big,
    layer_geometry,
    store_path,
)
from napari_inpaint._mask_panel import MaskPanel
from napari_inpaint._methods import CostCache, is_header
from napari_inpaint._params import parameter_widgets, read_values
from napari_inpaint._picker import PickerRows
from napari_inpaint._presets import make_record
from napari_inpaint._preview import RegionPreview
from napari_inpaint._results import result_name
from napari_inpaint._runner import Runner
from napari_inpaint._session import SessionPanel
from napari_inpaint._weights import (
    SHIPPED,
    WeightsPicker,
)
from napari_inpaint._workers import (
    fetch_weights,
    fine_tune,
    restore_in_memory,
    restore_tiled,
)

if TYPE_CHECKING:
    import napari

logger = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda", "mps")


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {key: str(value) if isinstance(value, Path) else value for key, value in values.items()}


class MethodPicker(widgets.ComboBox):
    """The method ComboBox: re-reading its rows (new estimates, weights, plugins) keeps the
    chosen method and emits no change unless that method is gone."""

    def reset_choices(self, *_: Any) -> None:
        """Re-read the rows, keeping the value."""
        kept = self.value
        with self.changed.blocked():
            self.native.clear()  # magicgui appends relabelled rows at the end: rebuild in order
            super().reset_choices()
            if kept in list(self.choices):
                self.value = kept
        if self.value != kept:
            self.changed.emit(self.value)


class InpaintWidget(PickerRows, Runner, widgets.Container):
    """The napari-inpaint dock widget (see the module docstring)."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        self.viewer = viewer
        self.synchronous = False  # tests: run the work in the calling thread
        self.tiled_pixels = TILED_PIXELS
        self.fit_size = 128  # patch side of "Fit to this image"
        self.busy = False
        self.last_error: str | None = None
        self.results: list[Any] = []
        self._stop: threading.Event | None = None
        self._progress: Any = None
        self._cancelled_message = ""
        self._ended = False  # the running work returned or failed: late progress is not shown
        self.ask: Callable[[str], bool] = self._ask_user  # yes/no questions to the user
        self._running_layer: Any = None  # the live preview of an in-memory run
        self._run_started = 0.0
        self.first_pixels_seconds: float | None = None  # Run -> first preview pixels shown
        self._final_status = ""
        self.image = widgets.ComboBox(label="image", choices=self._image_choices, name="image")
        self.costs = CostCache()
        self._active_weights: dict[str, str | None] = {}  # short names, for the picker
        self._chosen_weights: dict[str, Any] = {}  # the weights pickers' values, per method
        self._pixels: dict[tuple[int, int, int], int] | None = None  # per tile geometry
        self.method = MethodPicker(label="method", choices=self._method_choices, name="method")
        self.method.native.model().rowsInserted.connect(self._disable_headers)
        self._disable_headers()
        self.summary = widgets.Label(value="", name="summary")
        self.params = widgets.Container(name="params")
        self.device = widgets.ComboBox(label="device", choices=DEVICES, value="auto",
                                       name="device")
        self.tile = widgets.SpinBox(label="tile (px)", min=32, max=16384, value=512, name="tile")
        self.output = widgets.FileEdit(label="output store", mode="w", filter="*.zarr",
                                       name="output")
        self.output.tooltip = "new .zarr store for big images (restored tile by tile)"
        self.masks = MaskPanel(viewer, self.image_layer, self.report, lambda: self.tiled_pixels)
        self.run_button = widgets.PushButton(text="Run", name="run")
        self.cancel_button = widgets.PushButton(text="Cancel", name="cancel", enabled=False)
        self.compare = widgets.CheckBox(text="compare: show the original", name="compare")
        self.session = SessionPanel(self)  # difference, split, presets
        self.region_preview = RegionPreview(self)  # Preview region, Accept, Discard
        self._run_settings: dict[str, Any] = {}
        self.fit_steps = widgets.SpinBox(label="fit steps", min=1, max=100_000, value=200,
                                         name="fit_steps")
        self.fit_button = widgets.PushButton(text="Fit to this image", name="fit")
        self.fit_button.tooltip = ("fine-tune the learned method on the intact part of the image,"
                                   " then use those weights")
        self.status = widgets.Label(value="", name="status")
        actions = widgets.Container(widgets=[self.run_button, self.cancel_button],
                                    layout="horizontal", labels=False)
        self.fit_row = widgets.Container(widgets=[self.fit_steps, self.fit_button],
                                         layout="horizontal")
        self.advanced = widgets.CheckBox(text="advanced: tile, device, fit", name="advanced")
        self.advanced.tooltip = "show the settings that rarely need changing"
        super().__init__(widgets=[
            self.image, self.method, self.summary, self.params, self.advanced, self.device,
            self.tile, self.fit_row, self.output, self.masks, actions, self.region_preview,
            self.compare,
            self.session, self.status,
        ])
        for label in (self.summary, self.status):  # long messages wrap, not widen the dock
            label.native.setWordWrap(True)
        self.method.changed.connect(self._method_changed)
        self.run_button.changed.connect(lambda *_: self.run())
        self.cancel_button.changed.connect(lambda *_: self.cancel())
        self.fit_button.changed.connect(lambda *_: self.fit())
        self.compare.changed.connect(self._show_compare)
        self.advanced.changed.connect(self._show_applicable)
        self.image.changed.connect(self._show_applicable)
        events = viewer.layers.events
        for event in (events.inserted, events.removed, events.moved):
            event.connect(self._layers_changed)
        self._method_changed()
        self.region_preview.watch()  # after the handlers above: settings make a preview stale

    # --- choices ---------------------------------------------------------------------------
    def _image_choices(self, *_: Any) -> list[tuple[str, Any]]:
        import napari

        return [(layer.name, layer) for layer in self.viewer.layers
                if isinstance(layer, napari.layers.Image)]

    def _layers_changed(self, event: Any = None) -> None:
        layer = getattr(event, "value", None)
        if getattr(event, "type", "") == "inserted" and layer is not None:
            layer.events.name.connect(self._layers_changed)  # renamed: relabel its row
        self._pixels = None  # the estimates follow the image and its masks
        try:
            self.image.reset_choices()
            self._show_applicable()
            self.masks.refresh()
        except RuntimeError:  # the dock widget was closed (its Qt objects are gone)
            for signal in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed,
                           self.viewer.layers.events.moved):
                signal.disconnect(self._layers_changed)

    def refresh_methods(self) -> None:
        """Re-read the registry (after installing a plugin), the active weights and the
        estimates."""
        self._pixels = None
        self.method.reset_choices()
        self._method_changed()

    def method_info(self) -> MethodInfo:
        from inpaint_core.api import get_method

        return get_method(self.method.value).info

    def _method_changed(self, *_: Any) -> None:
        if is_header(self.method.value):  # a header is never the value: its first method
            names = [v for v in self.method.choices if not is_header(v)]
            current = list(self.method.choices).index(self.method.value)
            later = [v for v in list(self.method.choices)[current:] if not is_header(v)]
            self.method.value = (later or names)[0]
            return
        info = self.method_info()
        self.summary.value = f"{info.family.value} - {info.summary}"
        self.summary.tooltip = info.reference
        self.params.clear()
        self.params.extend(parameter_widgets(info, self.get_weights))
        self.tile.value = info.preferred_tile
        self.device.enabled = "device" in {p.name for p in info.parameters}
        self.fit_button.enabled = info.learned and not self.busy
        self._show_applicable()
        picker = self.weights_picker()
        if picker is not None:
            picker.set_busy(self.busy)
            if info.name in self._active_weights:  # the weights last chosen for this method
                with picker.source.changed.blocked():
                    self._restore_weights(picker, info.name)
            picker.source.changed.connect(self._weights_chosen)
            picker.path.changed.connect(self._weights_chosen)

    def _restore_weights(self, picker: WeightsPicker, method: str) -> None:
        if method in self._chosen_weights:
            picker.value = self._chosen_weights[method]

    def _weights_chosen(self, *_: Any) -> None:
        """Remember the weights chosen for the method; show them in its picker entry."""
        picker = self.weights_picker()
        if picker is None:
            return
        value = picker.get_value()
        label = "lite" if value is None and picker.source.value == SHIPPED else (
            None if value is None else Path(str(value)).stem)
        self._chosen_weights[picker.method] = value
        if self._active_weights.get(picker.method, "?") != label:
            self._active_weights[picker.method] = label
            self.method.reset_choices()

    def _show_applicable(self, *_: Any) -> None:
        """Show the settings that apply: tile, device (methods with one) and fit (learned
        methods) when "advanced" is ticked; the output store for big images."""
        info = self.method_info()
        advanced = bool(self.advanced.value)
        self.tile.visible = advanced
        self.device.visible = advanced and "device" in {p.name for p in info.parameters}
        self.fit_row.visible = advanced and info.learned
        try:
            big = is_big(self.image_layer(), self.tiled_pixels)
        except Exception:  # no image yet
            big = False
        self.output.visible = big

    def weights_picker(self) -> WeightsPicker | None:
        """The learned method's weights picker, None for other methods."""
        for widget in self.params:
            if isinstance(widget, WeightsPicker):
                return widget
        return None

    def image_layer(self) -> Any:
        """The chosen image layer, or raise saying to add one."""
        layer = self.image.value
        if layer is None or layer not in self.viewer.layers:
            raise InvalidInputError("no image layer: open or add an image first")
        return layer

    def method_params(self) -> dict[str, Any]:
        """The method's parameters from its inputs and the device picker, validated (errors
        as ``inpaint run --param``)."""
        info = self.method_info()
        values = read_values(info, list(self.params))
        if "device" in {p.name for p in info.parameters}:
            from inpaint_core.devices import resolve_device

            resolve_device(self.device.value)  # "CUDA requested but absent", before any work
            values["device"] = self.device.value
        return info.validate_params(values)

    # --- settings (presets, provenance) ------------------------------------------------------
    def settings_record(self, weights_sha256: str | None = None) -> dict[str, Any]:
        """The widget's settings as a preset record (:mod:`napari_inpaint._presets`)."""
        info = self.method_info()
        values = read_values(info, list(self.params))
        if "device" in {p.name for p in info.parameters}:
            values["device"] = self.device.value
        picker = self.weights_picker()
        masks = [{"layer": row.layer.name, "values": str(row.values.value)}
                 for row in self.masks.rows if row.use.value]
        return make_record(info.name, values, None if picker is None else picker.get_value(),
                           masks, int(self.masks.grow.value), weights_sha256)

    def apply_settings(self, record: dict[str, Any]) -> list[str]:
        """Set method, parameters, weights, mask layers, label filters and grow from a preset
        record; returns the names of its mask layers that are not open."""
        self.method.value = record["method"]
        inputs = {widget.name: widget for widget in self.params}
        for name, value in dict(record.get("params") or {}).items():
            if name == "device":
                self.device.value = value
            elif name in inputs and value is not None:
                inputs[name].value = value
        picker = self.weights_picker()
        if picker is not None:
            picker.value = record.get("weights")
        wanted = {mask["layer"]: mask.get("values", "") for mask in record.get("masks", [])}
        for row in self.masks.rows:
            row.use.value = row.layer.name in wanted
            if row.layer.name in wanted:
                row.values.value = wanted[row.layer.name]
        self.masks.grow.value = int(record.get("grow", 0))
        opened = {row.layer.name for row in self.masks.rows}
        return [name for name in wanted if name not in opened]

    # --- running ---------------------------------------------------------------------------
    def run(self) -> None:
        """Restore the chosen image with the chosen method (the Run button)."""
        pressed = time.perf_counter()  # for first_pixels_seconds: from the press, not the start
        try:
            layer = self.image_layer()
            method = self.method.value
            params = self.method_params()
            mask = self.masks.combined_mask(layer)
            self._run_settings = self.settings_record()  # the result's provenance
            stop = threading.Event()
            if is_big(layer, self.tiled_pixels):
                output = self._output_store()
                scan = store_path(layer) or image_array(layer)
                work = restore_tiled(
                    scan, mask, method, params, output, stop, tile=int(self.tile.value),
                    device=self.device.value,
                )
                self._start(work, stop, f"{method}: tiled", lambda r: self._add_tiled(layer, r))
                return
            hole = np.asarray(mask)
            if not hole.any():
                raise InvalidInputError(
                    "mask is empty: paint the damage on a mask layer (or tick one) first"
                )
            image = np.asarray(image_array(layer))
            output = image.copy()  # filled block by block: the live preview shows it
            work = restore_in_memory(image, hole, method, params, stop,
                                     tile=int(self.tile.value), output=output)
            self._start(work, stop, method, lambda r: self._add_result(layer, r))
            self._run_started = pressed
            self._show_running(layer, output, method)
        except Exception as error:
            self.report(error)

    def get_weights(self, name: str) -> None:
        """Download and install catalogue entry ``name`` ("Get weights…"), showing its licence
        first; on success the picker selects it. Cancel keeps the partial download."""
        from napari.utils.notifications import show_info

        try:
            entry = get_entry(name)
            notice = (f"{name}: licence {entry.licence}; downloading about {entry.size_mb:.0f} "
                      f"MB from {entry.url.split('?')[0]}")
            show_info(notice)
            stop = threading.Event()
            self._start(fetch_weights(name, stop, fetch), stop, f"get {name}",
                        self._weights_fetched,
                        cancelled=f"cancelled: the download of {name} stopped; its partial "
                        "file is kept and Get weights… resumes it")
        except Exception as error:
            self.report(error)

    def _weights_fetched(self, result: Any) -> None:
        picker = self.weights_picker()
        if picker is not None and picker.method == result.entry.method:
            picker.refresh()
            picker.value = result.entry.name
        done = "was already installed" if result.installed_before else "installed"
        self.status.value = (f"{result.entry.name} {done} ({result.path}); licence: "
                             f"{result.entry.licence}")

    def _output_store(self) -> Path:
        text = str(self.output.value or "")
        if text in ("", "."):
            raise ParameterError(
                "this image is restored tile by tile into a new zarr store: choose the "
                "'output store' path (e.g. restored.zarr) first"
            )
        path = Path(text)
        folder = path.parent
        if not folder.is_dir():
            if folder.exists() or not self.ask(f"The folder {folder} does not exist. Create "
                                               "it for the output store?"):
                raise ParameterError(f"output folder {str(folder)!r} does not exist: create it "
                                     "or choose another 'output store' path")
            folder.mkdir(parents=True)
        return path

    def _ask_user(self, question: str) -> bool:
        """Yes or no from a dialog (tests replace ``ask`` to answer programmatically)."""
        from qtpy.QtWidgets import QMessageBox

        answer = QMessageBox.question(self.native, "napari-inpaint", question)
        return answer == QMessageBox.StandardButton.Yes

    def cancel(self) -> None:
        """Stop the running work (the Cancel button); nothing of it is applied."""
        if self._stop is not None:
            self._stop.set()
            self.status.value = "cancelling..."

    def fit(self) -> None:
        """Fine-tune the learned method on the intact part of the image (the Fit button)."""
        try:
            layer = self.image_layer()
            info = self.method_info()
            if not info.learned:
                raise ParameterError(f"method {info.name!r} is not learned: there is nothing "
                                     "to fit; pick a learned method")
            params = self.method_params()
            params.pop("device", None)
            try:
                damage = self.masks.combined_mask(layer)
            except InvalidInputError:
                damage = None  # no mask layer: the whole image is intact
            stop = threading.Event()
            work = fine_tune(info.name, image_array(layer), damage, params, stop,
                             steps=int(self.fit_steps.value), device=self.device.value,
                             size=self.fit_size)
            self._start(work, stop, f"fit {info.name}", self._use_weights)
        except Exception as error:
            self.report(error)

    # --- results ---------------------------------------------------------------------------
    def _add_result(self, source: Any, restored: Any) -> None:
        name = result_name(restored.method, restored.weights, source.name)
        metadata = {OWN_KEY: {"role": "result", "method": restored.method, "source": source.name,
                              "params": _jsonable(restored.params)}}
        if restored.weights is not None:  # a learned method: which weights, their sha256
            metadata[OWN_KEY]["weights"] = restored.weights
        sha256 = (restored.weights or {}).get("sha256")
        metadata[OWN_KEY]["settings"] = dict(self._run_settings, weights_sha256=sha256)
        layer, self._running_layer = self._running_layer, None
        if layer is None or layer not in self.viewer.layers:
            extra: dict[str, Any] = {"rgb": source.rgb}
            if not source.rgb:
                extra["contrast_limits"] = source.contrast_limits
            layer = self.viewer.add_image(restored.image, name=name, metadata=metadata,
                                          **layer_geometry(source), **extra)
        else:  # the live preview becomes the result
            layer.data = restored.image
            layer.name = name
            layer.metadata = metadata
        if restored.seconds_per_pixel:  # the measured cost: the picker's estimates
            info = self.method_info() if self.method.value == restored.method else None
            device = self._device_of(info) if info is not None else "cpu"
            self.costs.record(restored.method, device, restored.seconds_per_pixel)
            self.method.reset_choices()
        for key, array in restored.extras.items():  # e.g. edge-gan's edges (show_edges)
            self.viewer.add_image(array, name=f"{name} {key}", colormap="gray",
                                  contrast_limits=(0.0, 1.0), blending="additive",
                                  metadata={OWN_KEY: {"role": "extra", "source": name}},
                                  **layer_geometry(source))
        self._new_result(layer)

    def _add_tiled(self, source: Any, result: Any) -> None:
        from napari_inpaint._reader import read_store

        ((data, kwargs, _),) = read_store(result.output)
        provenance = kwargs["metadata"].get("inpaint", {})
        settings = dict(self._run_settings, weights_sha256=provenance.get("weights_sha256"))
        kwargs["metadata"][OWN_KEY].update(role="result", source=source.name, settings=settings)
        if provenance.get("weights_sha256"):  # a learned method: as an in-memory result names it
            given = dict(provenance.get("parameters") or {}).get("weights")
            kwargs["metadata"][OWN_KEY]["weights"] = {
                "weights": str(given) if given else "shipped",
                "sha256": provenance["weights_sha256"],
            }
        kwargs["name"] = result_name(str(provenance.get("method", "restored")),
                                     kwargs["metadata"][OWN_KEY].get("weights"), source.name)
        layer = self.viewer.add_image(data, **kwargs, **layer_geometry(source))
        self._new_result(layer)

    def _new_result(self, layer: Any) -> None:
        self.results.append(layer)
        self.compare.value = False
        layer.visible = True
        self.status.value = f"done: added layer {layer.name!r}"

    def _show_compare(self, before: bool) -> None:
        """The compare toggle: hide the newest result to show the original under it."""
        if self.results and self.results[-1] in self.viewer.layers:
            self.results[-1].visible = not before

    def _use_weights(self, result: Any) -> None:
        for widget in self.params:
            if widget.name == "weights":
                widget.value = str(result.weights)
        self.status.value = f"fitted {result.steps} steps: using weights {result.weights}"
