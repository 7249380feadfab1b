"""Training datasets: sample contract, determinism, crops from the source, damage avoidance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
import zarr

from inpaint_core.errors import ImageIOError, InvalidInputError
from inpaint_core.io.images import write_image
from inpaint_core.masks import MaskKind
from inpaint_core.training.datasets import FolderDataset, MaskMix, ScanPatchDataset

SIZE = 64


def _check_sample(sample: dict[str, torch.Tensor], size: int = SIZE) -> None:
    assert set(sample) == {"image", "mask"}
    image, mask = sample["image"], sample["mask"]
    assert image.shape == (3, size, size) and image.dtype == torch.float32
    assert mask.shape == (1, size, size) and mask.dtype == torch.float32
    assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0
    assert set(torch.unique(mask).tolist()) <= {0.0, 1.0}
    coverage = float(mask.mean())
    assert 0.0 < coverage < 0.6, coverage


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    (root / "sub").mkdir(parents=True)
    write_image(root / "a_rgb.png", rng.integers(0, 256, (120, 150, 3), dtype=np.uint8))
    tifffile.imwrite(root / "sub" / "b_grey.tif", rng.integers(0, 65536, (90, 80), np.uint16))
    rgba = np.zeros((100, 100, 4), dtype=np.uint8)
    rgba[..., :3] = (200, 40, 120)  # a constant colour: every crop must be this colour
    rgba[..., 3] = rng.integers(0, 256, (100, 100), dtype=np.uint8)
    write_image(root / "c_rgba.png", rgba)
    (root / "notes.txt").write_text("not an image")
    small = np.full((40, 30), 1000, dtype=np.uint16)  # smaller than SIZE: upscaled
    write_image(root / "sub" / "d_small.png", small)
    return root


def test_folder_dataset_finds_images_recursively_sorted(folder: Path) -> None:
    dataset = FolderDataset(folder, size=SIZE)
    names = [path.name for path in dataset.paths]
    assert names == ["a_rgb.png", "c_rgba.png", "b_grey.tif", "d_small.png"]
    assert len(dataset) == 4


def test_folder_samples_follow_the_contract(folder: Path) -> None:
    dataset = FolderDataset(folder, size=SIZE)
    for index in range(len(dataset)):
        _check_sample(dataset[index])
    grey = dataset[2]["image"]  # b_grey.tif: replicated to three equal channels
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[0], grey[2])
    assert float(grey.std()) > 0.05  # and scaled from uint16, not clipped to 1
    small = dataset[3]["image"]
    assert torch.allclose(small, torch.full_like(small, 1000 / 65535), atol=1e-6)


def test_crops_come_from_the_image(folder: Path) -> None:
    dataset = FolderDataset(folder, size=SIZE, scale_range=(0.3, 1.0))
    expected = torch.tensor([200, 40, 120], dtype=torch.float32) / 255
    for epoch in range(3):
        dataset.set_epoch(epoch)
        image = dataset[1]["image"]  # c_rgba.png: constant colour, random alpha dropped
        assert torch.allclose(image, expected[:, None, None].expand_as(image), atol=1e-6)


def test_crop_without_resize_or_flip_is_a_window_of_the_image(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    source = rng.integers(0, 256, (SIZE + 20, SIZE + 30, 3), dtype=np.uint8)
    write_image(tmp_path / "x.png", source)
    # scale 0.01 clamps the crop side to SIZE: no resize, so the crop is an exact window.
    dataset = FolderDataset(tmp_path, size=SIZE, scale_range=(0.01, 0.01), flip=False)
    image = (dataset[0]["image"].numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8)
    windows = np.lib.stride_tricks.sliding_window_view(source, (SIZE, SIZE, 3))[..., 0, :, :, :]
    assert (windows == image).all(axis=(-3, -2, -1)).any()


def test_folder_determinism_and_epochs(folder: Path) -> None:
    first = FolderDataset(folder, size=SIZE, seed=3)
    second = FolderDataset(folder, size=SIZE, seed=3)
    a, b = first[0], second[0]
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["mask"], b["mask"])
    assert torch.equal(first[0]["mask"], a["mask"])  # asking again gives the same item
    first.set_epoch(1)
    c = first[0]
    assert not torch.equal(a["mask"], c["mask"])
    assert not torch.equal(a["image"], c["image"])
    first.set_epoch(0)
    assert torch.equal(first[0]["image"], a["image"])
    other_seed = FolderDataset(folder, size=SIZE, seed=4)[0]
    assert not torch.equal(other_seed["mask"], a["mask"])


def test_folder_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.md").write_text("x")
    with pytest.raises(InvalidInputError, match=r"empty.*no images.*\.png.*\.tiff"):
        FolderDataset(empty)
    with pytest.raises(InvalidInputError, match="not a directory"):
        FolderDataset(tmp_path / "missing")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "bad.png").write_bytes(b"not a png")
    dataset = FolderDataset(broken, size=SIZE)
    with pytest.raises(ImageIOError, match=r"bad\.png"):
        dataset[0]
    with pytest.raises(IndexError):
        dataset[1]
    with pytest.raises(InvalidInputError, match="scale_range"):
        FolderDataset(broken, scale_range=(0.5, 1.5))
    with pytest.raises(InvalidInputError, match="size"):
        FolderDataset(broken, size=2)


def test_mask_mix_validates_and_normalises() -> None:
    mix = MaskMix(kinds=(("centre", 1), ("cracks", 3)))
    assert mix.kinds == (("centre", 0.25), ("cracks", 0.75))
    assert abs(sum(p for _, p in MaskMix().kinds) - 1.0) < 1e-12
    with pytest.raises(InvalidInputError, match=r"'blobs'.*valid kinds: centre"):
        MaskMix(kinds=(("blobs", 1.0),))
    with pytest.raises(InvalidInputError, match=r"probability 0.*> 0"):
        MaskMix(kinds=(("centre", 0.0),))
    with pytest.raises(InvalidInputError, match="probability -1"):
        MaskMix(kinds=(("centre", -1.0),))
    with pytest.raises(InvalidInputError, match="non-empty"):
        MaskMix(kinds=())
    with pytest.raises(InvalidInputError, match="twice"):
        MaskMix(kinds=(("centre", 1.0), ("centre", 1.0)))
    with pytest.raises(InvalidInputError, match="ratio_range"):
        MaskMix(ratio_range=(0.5, 0.2))
    with pytest.raises(InvalidInputError, match="ratio_range"):
        MaskMix(ratio_range=(0.0, 0.2))


def test_mask_mix_draws_every_kind_and_ratio() -> None:
    mix = MaskMix(ratio_range=(0.2, 0.3))
    rng = np.random.default_rng(0)
    coverages: dict[str, list[float]] = {kind.value: [] for kind in MaskKind}
    seen = set()
    for _ in range(120):
        # Peek at the kind the next draw picks, replaying the same generator state.
        state = rng.bit_generator.state
        kind = mix.kinds[int(rng.choice(len(mix.kinds), p=mix.probabilities))][0]
        rng.bit_generator.state = state
        mask = mix.sample((32, 32), rng)
        assert mask.dtype == np.bool_ and mask.shape == (32, 32)
        seen.add(kind)
        coverages[kind].append(float(mask.mean()))
    assert seen == {kind.value for kind in MaskKind}
    for kind, values in coverages.items():
        high = 0.15 if kind == "cracks" else 0.3
        low = 0.15 if kind == "cracks" else 0.2
        assert all(low - 0.02 <= value <= high + 0.02 for value in values), (kind, values)


def _scan(tmp_path: Path) -> tuple[np.ndarray, zarr.Array, np.ndarray, zarr.Array]:
    rng = np.random.default_rng(5)
    data = rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)
    scan = zarr.create_array(
        store=str(tmp_path / "scan.zarr"), shape=data.shape, chunks=(128, 128, 3), dtype="uint8"
    )
    scan[:] = data
    damage = np.zeros((512, 512), dtype=np.uint8)
    damage[100:300, 150:400] = 1  # a damaged block
    damage[450, 37] = 7  # and one damaged pixel
    stored = zarr.create_array(
        store=str(tmp_path / "damage.zarr"), shape=damage.shape, chunks=(100, 100), dtype="uint8"
    )
    stored[:] = damage
    return data, scan, damage, stored


def test_scan_patches_avoid_damage_and_match_the_scan(tmp_path: Path) -> None:
    data, scan, damage, stored = _scan(tmp_path)
    dataset = ScanPatchDataset(scan, stored, size=SIZE, samples=200, seed=1, flip=False)
    assert len(dataset) == 200
    positions = dataset.positions()
    assert positions.shape == (200, 2)
    assert len({tuple(p) for p in positions}) > 50  # spread over the free area
    for (row, col), index in zip(positions, range(200), strict=True):
        assert not damage[row : row + SIZE, col : col + SIZE].any()
        if index < 20:
            sample = dataset[index]
            _check_sample(sample)
            expected = data[row : row + SIZE, col : col + SIZE].transpose(2, 0, 1) / 255
            assert np.allclose(sample["image"].numpy(), expected, atol=1e-6)
    # The block at (100, 150) is damaged: some patches sit left of it, some below it.
    assert (positions[:, 0] >= 300).any() and (positions[:, 1] + SIZE <= 150).any()


def test_scan_determinism_epochs_and_flips(tmp_path: Path) -> None:
    data, scan, _, stored = _scan(tmp_path)
    dataset = ScanPatchDataset(scan, stored, size=SIZE, samples=30, seed=2)
    again = ScanPatchDataset(scan, stored, size=SIZE, samples=30, seed=2)
    assert np.array_equal(dataset.positions(), again.positions())
    assert torch.equal(dataset[4]["image"], again[4]["image"])
    before = dataset.positions()
    dataset.set_epoch(1)
    assert not np.array_equal(before, dataset.positions())
    flipped = 0
    for index in range(30):
        row, col = dataset.position(index)
        window = data[row : row + SIZE, col : col + SIZE].transpose(2, 0, 1) / 255
        image = dataset[index]["image"].numpy()
        variants = [window, window[:, :, ::-1], window[:, ::-1], window[:, ::-1, ::-1]]
        matches = [np.allclose(image, v, atol=1e-6) for v in variants]
        assert any(matches)
        flipped += not matches[0]
    assert 0 < flipped < 30


def test_scan_grey_float_numpy_and_no_damage(tmp_path: Path) -> None:
    grey = zarr.create_array(
        store=str(tmp_path / "grey.zarr"), shape=(200, 300), chunks=(64, 64), dtype="float32"
    )
    values = np.linspace(0, 1, 200 * 300, dtype=np.float32).reshape(200, 300)
    grey[:] = values
    dataset = ScanPatchDataset(grey, None, size=SIZE, samples=5, flip=False)
    sample = dataset[0]
    _check_sample(sample)
    row, col = dataset.position(0)
    assert torch.equal(sample["image"][0], sample["image"][2])
    assert np.allclose(sample["image"][1].numpy(), values[row : row + SIZE, col : col + SIZE])
    damage = np.zeros((200, 300), dtype=bool)
    damage[:, :200] = True
    right = ScanPatchDataset(grey, damage, size=SIZE, samples=20)
    assert (right.positions()[:, 1] >= 200).all()


def test_scan_errors(tmp_path: Path) -> None:
    _, scan, _, _ = _scan(tmp_path)
    mostly = np.ones((512, 512), dtype=bool)
    for row in range(0, 512, 100):
        for col in range(0, 512, 100):
            mostly[row : row + 40, col : col + 40] = False  # free holes too small for a patch
    percent = 100 * mostly.mean()
    with pytest.raises(
        InvalidInputError, match=rf"{percent:.1f}% of its pixels are damaged.*--size"
    ):
        ScanPatchDataset(scan, mostly, size=SIZE)
    with pytest.raises(InvalidInputError, match=r"100\.0% of its pixels are damaged"):
        ScanPatchDataset(scan, np.ones((512, 512), dtype=np.uint8), size=SIZE)
    almost = np.ones((512, 512), dtype=bool)
    almost[0, 0] = False
    with pytest.raises(InvalidInputError, match=r"99\.9% of its pixels are damaged"):
        ScanPatchDataset(scan, almost, size=SIZE)
    # A 32-pixel patch fits in the 40-pixel free squares, as the message suggests.
    smaller = ScanPatchDataset(scan, mostly, size=32, samples=50)
    for row, col in smaller.positions():
        assert not mostly[row : row + 32, col : col + 32].any()
    with pytest.raises(
        InvalidInputError, match=r"\(512, 500\) does not match scan \(512, 512, 3\)"
    ):
        ScanPatchDataset(scan, np.zeros((512, 500), dtype=bool), size=SIZE)
    with pytest.raises(InvalidInputError, match="smaller than a 1024x1024 patch"):
        ScanPatchDataset(scan, None, size=1024)
    with pytest.raises(InvalidInputError, match="samples"):
        ScanPatchDataset(scan, None, size=SIZE, samples=0)
    with pytest.raises(InvalidInputError, match="cannot open scan"):
        ScanPatchDataset(tmp_path / "nothing.zarr", None, size=SIZE)


def test_scan_opens_zarr_paths(tmp_path: Path) -> None:
    data, _, damage, _ = _scan(tmp_path)
    group = zarr.open_group(str(tmp_path / "store.zarr"), mode="w")
    group.create_array("scan", shape=data.shape, chunks=(128, 128, 3), dtype="uint8")[:] = data
    dataset = ScanPatchDataset(
        tmp_path / "store.zarr" / "scan", str(tmp_path / "damage.zarr"), size=SIZE, samples=40
    )
    for row, col in dataset.positions():
        assert not damage[row : row + SIZE, col : col + SIZE].any()
    _check_sample(dataset[0])
    with pytest.raises(InvalidInputError, match=r"zarr group.*its arrays: scan"):
        ScanPatchDataset(tmp_path / "store.zarr", None, size=SIZE)
