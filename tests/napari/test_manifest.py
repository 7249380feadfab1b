"""The napari plugin's npe2 manifest is valid and discoverable through its entry point."""

from __future__ import annotations

import npe2


def test_manifest_is_found_through_the_entry_point() -> None:
    manifest = npe2.PluginManifest.from_distribution("napari-inpaint")
    assert manifest.name == "napari-inpaint"
    assert manifest.display_name == "napari-inpaint"
    manifest.validate_imports()  # every contribution points at importable code


def test_manifest_contributes_widget_reader_writer_and_samples() -> None:
    contributions = npe2.PluginManifest.from_distribution("napari-inpaint").contributions
    assert [widget.display_name for widget in contributions.widgets] == ["Inpaint"]
    (reader,) = contributions.readers
    assert reader.filename_patterns == ["*.zarr"] and reader.accepts_directories
    (writer,) = contributions.writers
    assert writer.layer_types == ["labels"] and writer.filename_extensions == [".zarr", ".png"]
    assert [sample.key for sample in contributions.sample_data] == ["mural", "cracked-photo"]
