"""Image files: round trips at 8 and 16 bit, float TIFF, masks, and every refusal."""

from __future__ import annotations

import numpy as np
import pytest

from inpaint_core.errors import ImageIOError, OutputExistsError
from inpaint_core.io import read_image, read_mask, write_image


@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("trailing", [(), (3,), (4,)])
def test_integer_round_trip_is_exact(tmp_path, suffix, dtype, trailing) -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, np.iinfo(dtype).max, (17, 23, *trailing), endpoint=True)
    image = image.astype(dtype)
    if trailing:
        image[0, 0] = np.arange(trailing[0]) + 1  # channel order must survive (RGB, not BGR)
    path = write_image(tmp_path / f"image{suffix}", image)
    back = read_image(path)
    assert back.dtype == image.dtype and np.array_equal(back, image)


def test_float_tiff_round_trip_and_png_refuses_floats(tmp_path) -> None:
    image = np.random.default_rng(1).random((9, 11, 3)).astype(np.float32)
    back = read_image(write_image(tmp_path / "f.tiff", image))
    assert back.dtype == np.float32 and np.array_equal(back, image)
    with pytest.raises(ImageIOError, match=r"cannot write float32 pixels to PNG .*write a \.tif"):
        write_image(tmp_path / "f.png", image)
    assert not (tmp_path / "f.png").exists()


def test_colour_mask_is_a_hole_where_any_colour_channel_is_set(tmp_path) -> None:
    mask = np.zeros((8, 8, 4), np.uint8)
    mask[..., 3] = 255  # opaque everywhere: alpha is ignored
    mask[2, 3, 0] = 255
    mask[5, 6, 2] = 1
    read = read_mask(write_image(tmp_path / "m.png", mask))
    assert read.dtype == bool and read.sum() == 2 and read[2, 3] and read[5, 6]


def test_grey_mask_keeps_its_labels(tmp_path) -> None:
    labels = np.zeros((8, 8), np.uint16)
    labels[1, 1] = 700
    read = read_mask(write_image(tmp_path / "labels.png", labels))
    assert read.dtype == np.uint16 and read[1, 1] == 700


def test_missing_unsupported_and_corrupt_files(tmp_path) -> None:
    with pytest.raises(ImageIOError, match=r"cannot read '.*nothing\.png': no such file"):
        read_image(tmp_path / "nothing.png")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ImageIOError, match=r"unsupported file type '\.txt'; supported: \.png"):
        read_image(tmp_path / "notes.txt")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(ImageIOError, match=r"'.*broken\.png': not a valid PNG image"):
        read_image(tmp_path / "broken.png")
    (tmp_path / "broken.tif").write_bytes(b"II*\x00garbage")
    with pytest.raises(ImageIOError, match=r"cannot read '.*broken\.tif' as a TIFF image"):
        read_image(tmp_path / "broken.tif")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageIOError, match="not a valid PNG image"):
        read_image(tmp_path / "empty.png")


def test_writes_refuse_inputs_existing_files_and_odd_suffixes(tmp_path) -> None:
    image = np.zeros((4, 4), np.uint8)
    source = write_image(tmp_path / "source.png", image)
    with pytest.raises(OutputExistsError, match=r"is the input file .*refusing to overwrite"):
        write_image(tmp_path / "." / "source.png", image, inputs=[source], overwrite=True)
    with pytest.raises(OutputExistsError, match=r"already exists; .*pass --overwrite"):
        write_image(source, image + 1)
    assert read_image(source).max() == 0  # untouched by the refused writes
    write_image(source, image + 1, overwrite=True)
    assert read_image(source).max() == 1
    with pytest.raises(ImageIOError, match=r"unsupported file type '\.jpg'"):
        write_image(tmp_path / "lossy.jpg", image)
    with pytest.raises(ImageIOError, match=r"folder .*missing' is missing"):
        write_image(tmp_path / "missing" / "out.png", image)


def test_hard_link_to_the_input_is_refused(tmp_path) -> None:
    source = write_image(tmp_path / "source.png", np.zeros((4, 4), np.uint8))
    (tmp_path / "alias.png").hardlink_to(source)
    with pytest.raises(OutputExistsError, match="is the input file"):
        write_image(tmp_path / "alias.png", np.ones((4, 4), np.uint8), inputs=[source],
                    overwrite=True)


def test_a_failed_write_leaves_no_file(tmp_path, monkeypatch) -> None:
    import tifffile

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(tifffile, "imwrite", explode)
    with pytest.raises(RuntimeError, match="disk full"):
        write_image(tmp_path / "out.tif", np.zeros((4, 4), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_replaces_or_keeps_what_is_there(tmp_path) -> None:
    from inpaint_core.io.atomic import atomic_write

    target = tmp_path / "file.bin"
    with atomic_write(target) as temporary:
        temporary.write_bytes(b"first")
    with atomic_write(target) as temporary:  # replaced
        temporary.write_bytes(b"second")
    assert target.read_bytes() == b"second"
    with pytest.raises(FileExistsError), atomic_write(target, replace=False) as temporary:
        temporary.write_bytes(b"third")  # another writer's file is kept
    assert target.read_bytes() == b"second"
    fresh = tmp_path / "fresh.bin"
    with atomic_write(fresh, replace=False) as temporary:
        temporary.write_bytes(b"made")
    assert fresh.read_bytes() == b"made" and fresh.stat().st_nlink == 1
    with pytest.raises(ValueError), atomic_write(tmp_path / "failed.bin") as temporary:
        temporary.write_bytes(b"half")
        raise ValueError("the writer failed")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["file.bin", "fresh.bin"]


def test_stale_temporaries_are_found_by_their_names_only(tmp_path) -> None:
    from inpaint_core.io.atomic import remove_stale_temporaries, temporary_sibling

    chunk = tmp_path / "c" / "0" / "1"
    chunk.parent.mkdir(parents=True)
    chunk.write_bytes(b"kept")
    left = temporary_sibling(chunk)
    left.write_bytes(b"half")
    hidden = tmp_path / ".inpaint.lock"
    hidden.write_text("kept")
    (tmp_path / ".zattrs.tmp").write_text("kept: not a temporary_sibling name")
    assert remove_stale_temporaries(tmp_path) == 1
    assert not left.exists()
    assert chunk.read_bytes() == b"kept" and hidden.exists()
    assert (tmp_path / ".zattrs.tmp").exists()
