"""Make the bundled small sample: a photograph with mural-like damage, and its mask.

    python sample_data/make_samples.py

Writes ``astronaut_damaged.png`` (256x256 RGB, uint8) and ``astronaut_mask.png`` (uint8,
255 = hole) beside this script, and the ground truths for ``inpaint evaluate`` to ``eval/``:
the undamaged ``astronaut.png``, a ``coffee.png`` crop and a ``brick.png`` texture (grey).
The photographs are scikit-image's ``astronaut`` (NASA, public domain), ``coffee`` and
``brick`` (CC0). Damage: random-walk cracks and a few blotchy losses, painted in a plaster
colour so the damage is visible; the mask marks exactly the painted pixels. Deterministic
(seed 2026).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage
from skimage import data, transform

SIZE = 256
SEED = 2026
PLASTER = np.array([222, 214, 196], dtype=np.uint8)
HERE = Path(__file__).resolve().parent


def crack(mask: np.ndarray, rng: np.random.Generator, steps: int) -> None:
    """Draw one crack into ``mask``: a random walk that keeps a drifting heading."""
    height, width = mask.shape
    row, column = rng.uniform(0, height), rng.uniform(0, width)
    heading = rng.uniform(0, 2 * np.pi)
    for _ in range(steps):
        heading += rng.normal(0.0, 0.35)
        row = float(np.clip(row + np.sin(heading), 0, height - 1))
        column = float(np.clip(column + np.cos(heading), 0, width - 1))
        mask[int(row), int(column)] = True


def make_mask(rng: np.random.Generator) -> np.ndarray:
    """Bool ``(SIZE, SIZE)``: thin cracks (1-2 px wide) plus three blotchy losses."""
    mask = np.zeros((SIZE, SIZE), dtype=bool)
    for _ in range(6):
        crack(mask, rng, steps=int(rng.integers(80, 220)))
    mask = ndimage.binary_dilation(mask, iterations=1)
    for _ in range(3):
        blob = np.zeros_like(mask)
        centre = rng.integers(40, SIZE - 40, size=2)
        blob[tuple(centre)] = True
        blob = ndimage.binary_dilation(blob, iterations=int(rng.integers(6, 12)))
        noise = ndimage.gaussian_filter(rng.random((SIZE, SIZE)), 3) > 0.5
        mask |= ndimage.binary_dilation(blob, iterations=4) & (blob | noise)
    return mask


def main() -> None:
    rng = np.random.default_rng(SEED)
    photo = data.astronaut()[:448, 32:480]  # the head and shoulders, square
    photo = transform.resize(photo, (SIZE, SIZE), anti_aliasing=True, preserve_range=True)
    photo = np.rint(photo).astype(np.uint8)
    mask = make_mask(rng)
    damaged = photo.copy()
    damaged[mask] = PLASTER
    import cv2

    cv2.imwrite(str(HERE / "astronaut_damaged.png"), cv2.cvtColor(damaged, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(HERE / "astronaut_mask.png"), mask.astype(np.uint8) * 255)
    (HERE / "eval").mkdir(exist_ok=True)
    cv2.imwrite(str(HERE / "eval" / "astronaut.png"), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    coffee = data.coffee()[72:328, 172:428]
    cv2.imwrite(str(HERE / "eval" / "coffee.png"), cv2.cvtColor(coffee, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(HERE / "eval" / "brick.png"), data.brick()[128:384, 128:384])
    print(f"wrote samples to {HERE} (hole fraction {mask.mean():.3f})")


if __name__ == "__main__":
    main()
