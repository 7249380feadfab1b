"""Build the held-out evaluation set: 256x256 crops of real images installed on this machine.

    python benchmarks/make_heldout.py [--out benchmarks/heldout]

Sources (all installed with the project's own dependencies, so the set is rebuilt anywhere):
scikit-image's sample photographs and textures, and matplotlib's sample photographs. Crops are
taken at fixed positions, so the set is the same on every run. No image of these sources may
be used to train shipped weights: a training corpus must exclude ``HELDOUT_SOURCES``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

SIZE = 256
# (source, loader key, crop corners as fractions of the free range (0 = top/left, 1 = bottom/right))
HELDOUT_SOURCES: tuple[tuple[str, str, tuple[tuple[float, float], ...]], ...] = (
    ("astronaut", "skimage", ((0.0, 0.3), (1.0, 0.0), (1.0, 1.0))),
    ("coffee", "skimage", ((0.5, 0.0), (0.5, 1.0))),
    ("chelsea", "skimage", ((0.5, 0.0), (0.5, 1.0))),
    ("rocket", "skimage", ((0.0, 0.0), (1.0, 0.5), (0.5, 1.0))),
    ("immunohistochemistry", "skimage", ((0.0, 0.0), (1.0, 1.0))),
    ("retina", "skimage", ((0.5, 0.5), (0.25, 0.75), (0.75, 0.25))),
    ("hubble_deep_field", "skimage", ((0.0, 0.0), (1.0, 1.0), (0.5, 0.5))),
    ("brick", "skimage", ((0.0, 0.0), (1.0, 1.0))),
    ("grass", "skimage", ((0.0, 1.0), (1.0, 0.0))),
    ("gravel", "skimage", ((0.5, 0.5),)),
    ("camera", "skimage", ((0.0, 0.0), (0.5, 0.5))),
    ("coins", "skimage", ((0.5, 0.5),)),
    ("moon", "skimage", ((0.5, 0.5),)),
    ("grace_hopper.jpg", "matplotlib", ((0.0, 0.5), (1.0, 0.5))),
    ("Minduka_Present_Blue_Pack.png", "matplotlib", ((0.5, 0.5),)),
)


def load(name: str, loader: str) -> np.ndarray:
    """The source image as uint8 ``(H, W)`` or ``(H, W, 3)``."""
    if loader == "skimage":
        from skimage import data

        return getattr(data, name)()
    import matplotlib.cbook

    from inpaint_core.io import read_image

    image = read_image(matplotlib.cbook.get_sample_data(name, asfileobj=False))
    return image[..., :3] if image.ndim == 3 else image


def crops(image: np.ndarray, corners: tuple[tuple[float, float], ...]) -> list[np.ndarray]:
    """256x256 crops at the given corners; an image smaller than that is resized up first."""
    from skimage.transform import resize

    height, width = image.shape[:2]
    if min(height, width) < SIZE:
        scale = SIZE / min(height, width)
        shape = (round(height * scale), round(width * scale))
        resized = resize(image, shape, anti_aliasing=False, preserve_range=True)
        image, (height, width) = np.rint(resized).astype(np.uint8), shape
    out = []
    for row, column in corners:
        top, left = round(row * (height - SIZE)), round(column * (width - SIZE))
        out.append(np.ascontiguousarray(image[top : top + SIZE, left : left + SIZE]))
    return out


def main() -> None:
    from inpaint_core.io import write_image

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "heldout")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    count = 0
    for name, loader, corners in HELDOUT_SOURCES:
        stem = Path(name).stem.lower()
        for index, crop in enumerate(crops(load(name, loader), corners)):
            write_image(args.out / f"{stem}-{index}.png", crop, overwrite=True)
            count += 1
    print(f"wrote {count} held-out images to {args.out}")


if __name__ == "__main__":
    main()
