"""Image and mask files: PNG and TIFF (8 and 16 bit; TIFF also float32), JPEG and BMP read-only.

Colour arrays are RGB(A) ``(H, W, C)``; grey ones ``(H, W)``. Writes are atomic (a temporary
file in the same folder, then a rename), refuse to replace an input, and refuse to replace an
existing file unless asked to.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from inpaint_core.arrays import check_image, to_float_colour
from inpaint_core.errors import ImageIOError, InvalidInputError, OutputExistsError
from inpaint_core.io.atomic import atomic_write

_OPENCV_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
_TIFF_SUFFIXES = (".tif", ".tiff")
READ_SUFFIXES: tuple[str, ...] = _OPENCV_SUFFIXES + _TIFF_SUFFIXES
WRITE_SUFFIXES: tuple[str, ...] = (".png", *_TIFF_SUFFIXES)


def _suffix(path: Path, allowed: tuple[str, ...], action: str) -> str:
    suffix = path.suffix.lower()
    if suffix not in allowed:
        raise ImageIOError(
            f"cannot {action} {str(path)!r}: unsupported file type {suffix or '(none)'!r}; "
            f"supported: {', '.join(allowed)}"
        )
    return suffix


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as it is stored (no rescaling).

    Returns:
        ``(H, W)`` grey or ``(H, W, C)`` RGB/RGBA, dtype as stored (uint8, uint16; TIFF may
        also hold float32/float64).

    Raises:
        ImageIOError: the file is missing, of an unsupported type, or not decodable.
    """
    path = Path(path)
    suffix = _suffix(path, READ_SUFFIXES, "read")
    if not path.is_file():
        raise ImageIOError(f"cannot read {str(path)!r}: no such file")
    if suffix in _TIFF_SUFFIXES:
        import tifffile

        try:
            array = tifffile.imread(path)
        except Exception as error:
            raise ImageIOError(f"cannot read {str(path)!r} as a TIFF image: {error}") from error
        if array.ndim < 2 or array.size == 0:  # tifffile returns an empty array for junk
            raise ImageIOError(
                f"cannot read {str(path)!r} as a TIFF image: no image data (shape {array.shape})"
            )
        return array
    import cv2

    data = np.fromfile(path, dtype=np.uint8)
    array = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if array is None:
        raise ImageIOError(f"cannot read {str(path)!r}: not a valid {suffix[1:].upper()} image")
    if array.ndim == 3 and array.shape[2] == 3:
        array = cv2.cvtColor(array, cv2.COLOR_BGR2RGB)
    elif array.ndim == 3 and array.shape[2] == 4:
        array = cv2.cvtColor(array, cv2.COLOR_BGRA2RGBA)
    return array


def read_colour(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as float32 ``(H, W, C)`` in [0, 1], C in {1, 3} (alpha dropped).

    Raises:
        ImageIOError: as :func:`read_image`.
        InvalidInputError: the pixels break the array contract (see ``check_image``).
    """
    return to_float_colour(check_image(read_image(path), name=f"image {str(path)!r}"))


def find_images(folder: str | os.PathLike[str], what: str = "folder") -> list[Path]:
    """Every image file (:data:`READ_SUFFIXES`) under ``folder``, recursively, sorted.

    Raises:
        InvalidInputError: ``folder`` is not a directory, or holds no image; ``what`` names it
            in the message (e.g. ``--data``).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InvalidInputError(f"{what} {str(folder)!r} is not a directory")
    images = sorted(
        path
        for path in folder.rglob("*")
        if path.suffix.lower() in READ_SUFFIXES and path.is_file()
    )
    if not images:
        raise InvalidInputError(
            f"{what} {str(folder)!r} holds no images; "
            f"expected files ending in {', '.join(READ_SUFFIXES)}"
        )
    return images


def colour_holes(array: np.ndarray) -> np.ndarray:
    """Bool ``(H, W)`` holes of a colour mask ``(H, W, C)``: any of the first three channels
    non-zero (an alpha channel is ignored)."""
    return np.any(np.asarray(array)[:, :, :3] != 0, axis=2)


def read_mask(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a mask file: ``(H, W)`` bool or integer labels, non-zero = hole.

    A colour mask file is a hole wherever any of its colour channels is non-zero (its alpha
    channel, if any, is ignored).
    """
    array = read_image(path)
    if array.ndim == 3:
        return colour_holes(array)
    if array.dtype.kind == "f":
        return array != 0
    return array


def check_output_path(
    path: str | os.PathLike[str],
    *,
    inputs: Iterable[str | os.PathLike[str]] = (),
    overwrite: bool = False,
) -> Path:
    """Return ``path`` if it may be written, else raise before any work is done.

    Raises:
        OutputExistsError: ``path`` is one of ``inputs`` (never allowed), or exists and
            ``overwrite`` is False.
        ImageIOError: unsupported suffix, or its folder does not exist.
    """
    path = Path(path)
    _suffix(path, WRITE_SUFFIXES, "write")
    for source in inputs:
        source = Path(source)
        same = path.resolve() == source.resolve() or (
            path.exists() and source.exists() and os.path.samefile(path, source)
        )
        if same:
            raise OutputExistsError(
                f"output {str(path)!r} is the input file {str(source)!r}; refusing to overwrite "
                "the source: choose another output path"
            )
    if path.exists() and not overwrite:
        raise OutputExistsError(
            f"output {str(path)!r} already exists; choose another path or pass --overwrite"
        )
    if not path.parent.is_dir():
        raise ImageIOError(f"cannot write {str(path)!r}: folder {str(path.parent)!r} is missing")
    return path


def write_image(
    path: str | os.PathLike[str],
    image: np.ndarray,
    *,
    inputs: Iterable[str | os.PathLike[str]] = (),
    overwrite: bool = False,
) -> Path:
    """Write ``image`` (``(H, W)`` or ``(H, W, C)`` RGB/RGBA) to PNG or TIFF, atomically.

    PNG holds uint8 and uint16; TIFF also float32 and float64. See :func:`check_output_path`
    for the refusals. Returns the path written.
    """
    path = check_output_path(path, inputs=inputs, overwrite=overwrite)
    suffix = path.suffix.lower()
    if suffix == ".png" and image.dtype not in (np.uint8, np.uint16):
        raise ImageIOError(
            f"cannot write {image.dtype} pixels to PNG {str(path)!r}: PNG holds 8 or 16-bit "
            "integers; write a .tif to keep floating-point values"
        )
    with atomic_write(path) as temporary:
        if suffix in _TIFF_SUFFIXES:
            import tifffile

            photometric = "rgb" if image.ndim == 3 and image.shape[2] in (3, 4) else None
            tifffile.imwrite(temporary, image, photometric=photometric)
        else:
            import cv2

            array = image
            if image.ndim == 3 and image.shape[2] == 3:
                array = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
            elif image.ndim == 3 and image.shape[2] == 4:
                array = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA)
            ok, encoded = cv2.imencode(".png", array)
            if not ok:
                raise ImageIOError(f"OpenCV could not encode {image.shape} {image.dtype} as PNG")
            temporary.write_bytes(encoded.tobytes())
    return path
