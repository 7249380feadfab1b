"""The weights picker of a learned method: shipped, published (catalogue) or a file.

:class:`WeightsPicker` replaces the free path field of a learned method's ``weights``
parameter. Its choices are "shipped (lite)" (when the method ships weights), every catalogue
entry for the method (:func:`inpaint_core.weights.catalogue`), marked installed or not, and
"file…" (a ``.safetensors`` field, shown only when chosen). Its ``value`` is what the method's
``weights`` parameter takes: None for the shipped weights, the catalogue name, or the file's
path. The licence of the chosen weights is shown below it; "Get weights…" (enabled for an
entry that is not installed) asks the dock widget to fetch it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from magicgui import widgets

from inpaint_core.errors import InpaintError, MissingWeightsError, ParameterError

SHIPPED = "<shipped>"
FILE = "<file>"
#: The licence of the lite weights shipped with the method plugins.
SHIPPED_LICENCE = "BSD-3-Clause, trained by napari-inpaint"
NOT_RECORDED = "not recorded"


def shipped_weights(method: str) -> Path | None:
    """The shipped (lite) weights file of learned ``method``, or None when it ships none."""
    from inpaint_core.api import get_method
    from inpaint_core.learned import LearnedMethod

    method_class = get_method(method)
    if not issubclass(method_class, LearnedMethod):
        return None
    try:
        path = method_class.default_weights()
    except MissingWeightsError:
        return None
    return path if path.is_file() else None


def entries_for(method: str) -> list[Any]:
    """The catalogue entries that ``method`` runs, in catalogue order."""
    from inpaint_core.weights import catalogue

    return [entry for entry in catalogue() if entry.method == method]


def is_installed(name: str) -> bool:
    """Whether catalogue entry ``name`` is installed (``inpaint weights fetch`` done)."""
    from inpaint_core.weights import installed_path

    return installed_path(name).is_file()


def file_licence(path: str | Path) -> str:
    """The licence a weights file's sidecar records, else :data:`NOT_RECORDED`."""
    from inpaint_core.weights import weights_info

    try:  # the sidecar alone: hashing the weights would stall the widget for a label
        return str(weights_info(path, verify=False)["licence"])
    except (InpaintError, OSError, ValueError, KeyError):
        return NOT_RECORDED


class WeightsPicker(widgets.Container):
    """A learned method's ``weights`` input (see the module docstring).

    Args:
        method: the learned method's registered name.
        get_weights: called with a catalogue name when "Get weights…" is pressed.
        tooltip: the parameter's help text.
    """

    def __init__(
        self,
        method: str,
        get_weights: Callable[[str], None] | None = None,
        tooltip: str | None = None,
    ) -> None:
        self.method = method
        self._get_weights = get_weights
        self._busy = False
        # choices as a callable: napari's reset_choices (on layer changes) re-reads them
        self.source = widgets.ComboBox(name="source", choices=self.choices, tooltip=tooltip)
        self.get_button = widgets.PushButton(text="Get weights…", name="get", enabled=False)
        self.get_button.tooltip = "download the chosen published weights, check and install them"
        self.path = widgets.FileEdit(name="path", mode="r", filter="*.safetensors", visible=False)
        self.path.tooltip = "a NAME.safetensors file (its NAME.json sidecar beside it)"
        self.licence = widgets.Label(value="", name="licence")
        self.licence.tooltip = "the licence of the chosen weights"
        row = widgets.Container(widgets=[self.source, self.get_button], layout="horizontal",
                                labels=False)
        licence_row = widgets.Container(
            widgets=[widgets.Label(value="licence:"), self.licence], layout="horizontal",
            labels=False,
        )
        for box in (row, licence_row):
            box.margins = (0, 0, 0, 0)
        super().__init__(name="weights", label="weights", labels=False,
                         widgets=[row, self.path, licence_row])
        self.margins = (0, 0, 0, 0)
        self.licence.native.setWordWrap(True)
        self.refresh(keep=False)
        self.source.changed.connect(self._update)
        self.path.changed.connect(self._update)
        self.get_button.changed.connect(lambda *_: self._get())

    # --- choices ---------------------------------------------------------------------------
    def choices(self, *_: Any) -> list[tuple[str, str]]:
        """``(label, key)`` of every choice: shipped, each catalogue entry, file."""
        rows: list[tuple[str, str]] = []
        if shipped_weights(self.method) is not None:
            rows.append(("shipped (lite)", SHIPPED))
        for entry in entries_for(self.method):
            state = "installed" if is_installed(entry.name) else "not installed"
            rows.append((f"{entry.name} ({state})", entry.name))
        rows.append(("file…", FILE))
        return rows

    def refresh(self, keep: bool = True) -> None:
        """Re-read the catalogue and the installed weights, keeping the choice (if ``keep``
        and it is still there; else the default: see :meth:`_default`)."""
        kept = self.source.value if keep else None
        with self.source.changed.blocked():
            self.source.reset_choices()
            keys = [str(key) for key in self.source.choices]
            self.source.value = kept if kept in keys else self._default(keys)
        self._update()

    def _default(self, keys: list[str]) -> str:
        """Shipped weights, else the first installed entry, else "file…" (empty: the method
        then says how to get weights when it runs)."""
        if SHIPPED in keys:
            return SHIPPED
        installed = [key for key in keys if key != FILE and is_installed(key)]
        return (installed or [FILE])[0]

    # --- value -----------------------------------------------------------------------------
    def get_value(self) -> str | Path | None:
        """The ``weights`` parameter: None (shipped), a catalogue name, or a file's path."""
        key = self.source.value
        if key == SHIPPED or key is None:
            return None
        if key == FILE:
            text = str(self.path.value or "")
            return None if text in ("", ".") else Path(text)
        return str(key)

    @property
    def value(self) -> str | Path | None:
        """See :meth:`get_value`; set None (shipped), a catalogue name, or a path."""
        return self.get_value()

    @value.setter
    def value(self, value: str | Path | None) -> None:
        keys = [str(key) for key in self.source.choices]
        text = "" if value is None else str(value)
        if text in ("", "."):
            self.source.value = SHIPPED if SHIPPED in keys else self._default(keys)
        elif text in keys and text not in (SHIPPED, FILE):
            self.source.value = text
        else:
            self.path.value = text
            self.source.value = FILE
        self._update()

    def parameter_value(self) -> str | Path | None:
        """:meth:`get_value`, refusing "file…" with no file chosen when the method ships
        weights (naming the fix); without shipped weights it is unset, and the method says
        how to get weights when it runs."""
        value = self.get_value()
        if value is None and self.source.value == FILE and SHIPPED in self.source.choices:
            raise ParameterError(
                f"method {self.method!r}: weights 'file…' needs a .safetensors file; choose "
                "one, or pick the shipped or a published entry"
            )
        return value

    # --- state -----------------------------------------------------------------------------
    def chosen_licence(self) -> str:
        """The licence of the chosen weights, as the label shows it."""
        key = self.source.value
        if key == SHIPPED:
            return SHIPPED_LICENCE
        if key == FILE:
            value = self.get_value()
            return NOT_RECORDED if value is None else file_licence(Path(value))
        from inpaint_core.weights import get_entry

        return get_entry(str(key)).licence

    def needs_fetch(self) -> bool:
        """Whether the chosen weights are a catalogue entry that is not installed."""
        key = self.source.value
        return key not in (SHIPPED, FILE, None) and not is_installed(str(key))

    def set_busy(self, busy: bool) -> None:
        """Disable "Get weights…" while the dock widget runs something."""
        self._busy = busy
        self.get_button.enabled = not busy and self.needs_fetch()

    def _update(self, *_: Any) -> None:
        self.path.visible = self.source.value == FILE
        self.licence.value = self.chosen_licence()
        self.get_button.enabled = not self._busy and self.needs_fetch()

    def _get(self) -> None:
        if self._get_weights is not None and self.needs_fetch():
            self._get_weights(str(self.source.value))
