"""The napari plugin of napari-inpaint (manifest in ``napari.yaml``).

The dock widget, reader, writer and sample data arrive with the napari issue; this package
holds a valid, empty npe2 manifest so that napari already discovers the plugin.
"""
