"""The weights picker of learned methods, driven as a user would: choose, Get weights…, Run.

Installed weights go to a temporary ``INPAINT_HOME``; published downloads come from a real
HTTP server on the loopback address (``tests/http_server.py``), or from a fake ``fetch``
that installs a copy of the shipped weights (to run the method with them).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from napari.utils.notifications import notification_manager

from inpaint_core.weights import FetchResult, get_entry, installed_path
from inpaint_core.weights import published as published_module
from napari_inpaint._weights import FILE, NOT_RECORDED, SHIPPED, SHIPPED_LICENCE
from napari_inpaint._widget import InpaintWidget

from ..http_server import (
    LoopbackServer,
    closed_port,
    loopback_server,  # noqa: F401  (the `server` fixture)
)
from .conftest import add_picture_and_mask

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_DIR = ROOT / "plugins" / "method_registry" / "inpaint_methods" / "weights"
NC = "CC BY-NC 4.0 (non-commercial use only)"
TEST_ENTRY = "edgeconnect-test"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ``INPAINT_HOME``: nothing installed, nothing downloaded."""
    folder = tmp_path / "home"
    monkeypatch.setenv("INPAINT_HOME", str(folder))
    return folder


def add_entry(monkeypatch: pytest.MonkeyPatch, url: str) -> Any:
    """A catalogue entry ``edgeconnect-test`` for edge-gan served at ``url`` (a zip)."""
    entry = dataclasses.replace(get_entry("edgeconnect-places2"), name=TEST_ENTRY, url=url,
                                digest=None, size_mb=2.0, member="places2")
    monkeypatch.setattr(published_module, "CATALOGUE", (*published_module.CATALOGUE, entry))
    return entry


def install_copy(target: Path, licence: str | None) -> Path:
    """Install the shipped edge-gan weights as ``target``, its sidecar recording ``licence``
    as a fetch does (``extra["published"]["licence"]``)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SHIPPED_DIR / "edge-gan.safetensors", target)
    sidecar = json.loads((SHIPPED_DIR / "edge-gan.json").read_text())
    if licence is not None:
        sidecar["extra"]["published"] = {"catalogue": target.stem, "licence": licence}
    target.with_suffix(".json").write_text(json.dumps(sidecar))
    return target


def labels(combo: Any) -> list[str]:
    return [combo.native.itemText(i) for i in range(len(combo))]


def wait_until_idle(qtbot: Any, widget: Any, timeout: float = 20) -> None:
    qtbot.waitUntil(lambda: not widget.busy, timeout=int(timeout * 1000))


def test_picker_lists_shipped_catalogue_and_file_with_their_licences(
    widget_factory: Any, home: Path, tmp_path: Path
) -> None:
    _, widget = widget_factory()
    widget.method.value = "edge-gan"
    picker = widget.weights_picker()
    assert labels(picker.source) == [
        "shipped (lite)", "edgeconnect-places2 (not installed)",
        "edgeconnect-celeba (not installed)", "edgeconnect-psv (not installed)", "file…",
    ]
    assert picker.value is None and picker.licence.value == SHIPPED_LICENCE
    assert not picker.get_button.enabled and picker.path.native.isHidden()
    assert "weights" not in widget.method_params() or widget.method_params()["weights"] is None

    picker.source.value = "edgeconnect-celeba"
    assert picker.value == "edgeconnect-celeba"
    assert picker.licence.value == NC and picker.get_button.enabled
    assert str(widget.method_params()["weights"]) == "edgeconnect-celeba"

    picker.source.value = FILE
    assert not picker.path.native.isHidden() and not picker.get_button.enabled
    assert picker.licence.value == NOT_RECORDED
    with pytest.raises(Exception, match=r"needs a \.safetensors file"):
        widget.method_params()  # "file…" with no file: said, not the shipped ones silently
    recorded = install_copy(tmp_path / "mine" / "w.safetensors", "Apache-2.0")
    picker.path.value = str(recorded)
    assert picker.licence.value == "Apache-2.0" and picker.value == recorded
    bare = install_copy(tmp_path / "bare" / "w.safetensors", None)
    picker.value = str(bare)  # as "Fit to this image" sets its weights
    assert picker.source.value == FILE and picker.licence.value == NOT_RECORDED
    picker.value = None
    assert picker.source.value == SHIPPED and picker.licence.value == SHIPPED_LICENCE

    # Installed weights are marked, and the choices follow the method.
    install_copy(installed_path("edgeconnect-psv"), NC)
    widget.method.value = "telea"
    assert widget.weights_picker() is None
    widget.method.value = "edge-gan"
    assert "edgeconnect-psv (installed)" in labels(widget.weights_picker().source)
    widget.method.value = "lama"  # no shipped weights
    lama = labels(widget.weights_picker().source)
    assert lama[0] == "big-lama (not installed)" and lama[-1] == "file…"
    assert "shipped (lite)" not in lama and widget.weights_picker().source.value == FILE
    widget.weights_picker().source.value = "big-lama"
    assert widget.weights_picker().licence.value == "Apache-2.0"


def test_get_weights_installs_selects_and_the_result_names_them(
    widget_factory: Any, home: Path, monkeypatch: pytest.MonkeyPatch, picture: np.ndarray,
    one_torch_thread: Any,
) -> None:
    entry = add_entry(monkeypatch, "http://127.0.0.1:9/unused.zip")
    total = 2_000_000
    shown_first: list[str] = []

    def fake_fetch(name: str, *, progress: Any = None, cancelled: Any = None) -> FetchResult:
        shown_first.extend(str(record.message) for record in notification_manager.records)
        for done in range(0, total + 1, 250_000):
            progress(done, total)
            time.sleep(0.02)  # a few worker ticks
        target = install_copy(installed_path(name), entry.licence)
        return FetchResult(entry, target, "0" * 64, installed_before=False)

    monkeypatch.setattr("napari_inpaint._widget.fetch", fake_fetch)
    viewer, widget = widget_factory()
    widget.method.value = "edge-gan"
    picker = widget.weights_picker()
    assert f"{TEST_ENTRY} (not installed)" in labels(picker.source)
    picker.source.value = TEST_ENTRY
    events: list[Any] = []
    on_progress = InpaintWidget._on_progress
    monkeypatch.setattr(InpaintWidget, "_on_progress",
                        lambda self, e: (events.append(e), on_progress(self, e)))
    widget.synchronous = True
    picker.get_button.native.click()

    assert widget.last_error is None
    assert any(f"licence {NC}" in message for message in shown_first)  # before the download
    sized = [event for event in events if event.done]
    assert sized and all(event.total == total for event in sized)  # determinate
    assert [e.done for e in sized] == sorted(e.done for e in sized) and sized[-1].done == total
    assert any("MB" in event.label and " of " in event.label for event in events)
    picker = widget.weights_picker()
    assert picker.value == TEST_ENTRY and f"{TEST_ENTRY} (installed)" in labels(picker.source)
    assert picker.licence.value == NC and not picker.get_button.enabled
    assert "installed" in widget.status.value
    assert widget.run_button.enabled and not widget.cancel_button.enabled

    add_picture_and_mask(viewer, picture, slice(20, 30), slice(25, 40))
    widget.device.value = "cpu"
    widget.run_button.native.click()
    assert widget.last_error is None
    metadata = viewer.layers[f"edge-gan ({TEST_ENTRY}) picture"].metadata["napari_inpaint"]
    sidecar = json.loads(installed_path(TEST_ENTRY).with_suffix(".json").read_text())
    assert metadata["weights"] == {"weights": TEST_ENTRY, "path": str(installed_path(TEST_ENTRY)),
                                   "sha256": sidecar["sha256"]}
    assert metadata["params"]["weights"] == TEST_ENTRY


def fetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"napari-inpaint get {TEST_ENTRY}"]


def test_cancel_stops_the_download_keeps_the_part_and_a_retry_resumes_it(
    widget_factory: Any, home: Path, monkeypatch: pytest.MonkeyPatch, server: LoopbackServer,
    qtbot: Any,
) -> None:
    payload = bytes(range(256)) * 16_000  # 4,096,000 bytes, not a zip
    server.files["/edgeconnect-test.zip"] = payload
    server.throttle = 0.05  # 64 KiB every 50 ms: about 3 s in all
    add_entry(monkeypatch, f"{server.url}/edgeconnect-test.zip")
    _, widget = widget_factory()
    widget.method.value = "edge-gan"
    picker = widget.weights_picker()
    picker.source.value = TEST_ENTRY
    picker.get_button.native.click()  # the real fetch, in napari's thread_worker
    assert widget.busy and widget.cancel_button.enabled and not widget.run_button.enabled
    assert not picker.get_button.enabled
    qtbot.waitUntil(lambda: " of 4.1 MB" in widget.status.value, timeout=10_000)
    assert widget._progress.total == len(payload)  # determinate: bytes of the whole download
    part = home / "downloads" / "edgeconnect-test.zip.part"

    started = time.monotonic()
    widget.cancel_button.native.click()
    wait_until_idle(qtbot, widget, timeout=3)
    assert time.monotonic() - started < 2  # stopped within a chunk, not at the end
    qtbot.waitUntil(lambda: not fetch_threads(), timeout=2000)  # the worker thread ended
    kept = part.stat().st_size
    assert 0 < kept < len(payload)
    time.sleep(0.3)
    assert part.stat().st_size == kept  # nothing more arrives
    assert widget.last_error is None and "cancelled" in widget.status.value
    assert "kept" in widget.status.value
    assert widget.run_button.enabled and not widget.cancel_button.enabled
    assert widget.weights_picker().get_button.enabled  # still not installed

    server.throttle = 0.0
    widget.weights_picker().get_button.native.click()  # resumes, then conversion fails
    wait_until_idle(qtbot, widget)
    assert server.requests[-1] == f"bytes={kept}-"
    assert widget.last_error is not None and "is not a valid zip archive" in widget.last_error
    assert widget.status.value.startswith("error:")
    assert widget.run_button.enabled and not widget.cancel_button.enabled
    assert f"{TEST_ENTRY} (not installed)" in labels(widget.weights_picker().source)


def test_offline_fetch_shows_the_error_and_run_is_enabled_again(
    widget_factory: Any, home: Path, monkeypatch: pytest.MonkeyPatch, qtbot: Any
) -> None:
    url = f"http://127.0.0.1:{closed_port()}/edgeconnect-test.zip"
    add_entry(monkeypatch, url)
    _, widget = widget_factory()
    widget.method.value = "edge-gan"
    widget.weights_picker().source.value = TEST_ENTRY
    before = len(notification_manager.records)
    widget.weights_picker().get_button.native.click()
    wait_until_idle(qtbot, widget)
    message = widget.last_error
    assert message is not None and "cannot reach" in message and url in message
    assert "inpaint weights import edge-connect" in message
    assert message in [record.message for record in notification_manager.records[before:]]
    assert widget.status.value == f"error: {message}"
    assert widget.run_button.enabled and not widget.cancel_button.enabled
    assert widget.weights_picker().get_button.enabled
