"""The napari plugin's npe2 manifest is valid and discoverable through its entry point."""

from __future__ import annotations

import npe2


def test_manifest_is_found_through_the_entry_point() -> None:
    manifest = npe2.PluginManifest.from_distribution("napari-inpaint")
    assert manifest.name == "napari-inpaint"
    assert manifest.display_name == "napari-inpaint"
    manifest.validate_imports()  # every contribution (none yet) points at importable code
