"""The napari plugin of napari-inpaint (manifest in ``napari.yaml``).

- ``_widget.py``: the dock widget (method picker, generated parameters, mask layers, Run).
- ``_reader.py``: zarr / OME-Zarr scans and the tiled engine's output stores, lazily.
- ``_writer.py``: Labels masks to zarr or PNG.
- ``_sample_data.py``: the synthetic damaged mural and a photograph with cracks.
- ``masks.py``: combining mask layers, label restriction, growing, thresholds (no Qt).
"""
