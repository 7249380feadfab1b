"""Build the training corpus for shipped weights from free photographs in Debian packages.

    sudo apt-get install --no-install-recommends mate-backgrounds ukui-wallpapers \\
        lomiri-wallpapers lomiri-wallpapers-16.04 gnome-backgrounds plasma-workspace-wallpapers \\
        sway-backgrounds mypaint-data-extras
    python sample_data/make_corpus.py [--out sample_data/corpus] [--short-side 768]

Every JPEG, PNG and WebP under the packages' folders is read, reduced so that its short side is
at most ``--short-side`` pixels (area averaging), and written as PNG to ``--out`` with a
``manifest.json`` listing each file's source, package folder and original size. Plasma ships
each wallpaper at several resolutions: only the largest is kept. mypaint's paper and canvas
backgrounds add painted-surface textures close to mural plaster.

The held-out evaluation set (``benchmarks/make_heldout.py``) uses scikit-image and matplotlib
images only; none of those is read here, so training never sees a held-out image.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

#: Folders the Debian packages above install their images into.
SOURCE_FOLDERS: tuple[str, ...] = (
    "/usr/share/backgrounds",
    "/usr/share/wallpapers",
    "/usr/share/mypaint/backgrounds",
)
SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
#: Images smaller than this (short side) are icons or tiles too small to crop from.
MIN_SHORT_SIDE = 128


def find_sources(folders: tuple[str, ...]) -> list[Path]:
    """Every image file under ``folders``, with only the largest of each Plasma wallpaper."""
    found: dict[str, Path] = {}
    for folder in folders:
        for path in sorted(Path(folder).rglob("*")):
            if path.suffix.lower() not in SUFFIXES or not path.is_file():
                continue
            # Plasma: .../Name/contents/images/1920x1080.jpg -> one entry per wallpaper.
            parts = path.parts
            key = str(path.parent.parent) if "contents" in parts else str(path)
            best = found.get(key)
            if best is None or path.stat().st_size > best.stat().st_size:
                found[key] = path
    return sorted(found.values())


def debian_packages(paths: list[Path]) -> dict[str, str]:
    """The Debian package that installed each path (``dpkg-query -S``), by path string."""
    import subprocess

    owners: dict[str, str] = {}
    for start in range(0, len(paths), 200):
        batch = [str(path) for path in paths[start : start + 200]]
        done = subprocess.run(
            ["dpkg-query", "-S", *batch], capture_output=True, text=True, check=False
        )
        for line in done.stdout.splitlines():
            package, _, path = line.partition(": ")
            owners[path.strip()] = package.split(":")[0]
    return owners


def reduce(image: np.ndarray, short_side: int) -> np.ndarray:
    """Shrink uint8 ``(H, W, 3)`` so its short side is at most ``short_side`` (area averaging)."""
    import cv2

    height, width = image.shape[:2]
    scale = short_side / min(height, width)
    if scale >= 1.0:
        return image
    size = (max(round(width * scale), 1), max(round(height * scale), 1))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def main() -> None:
    import cv2

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "corpus")
    parser.add_argument("--short-side", type=int, default=768)
    args = parser.parse_args()
    sources = find_sources(SOURCE_FOLDERS)
    if not sources:
        raise SystemExit(
            "no images found under " + ", ".join(SOURCE_FOLDERS) + "; install the Debian "
            "packages listed at the top of this script first"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    packages = debian_packages(sources)
    manifest = []
    for path in sources:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None or min(bgr.shape[:2]) < MIN_SHORT_SIDE:
            continue
        rgb = reduce(bgr, args.short_side)
        name = f"{len(manifest):04d}-{path.stem.lower().replace(' ', '_')[:40]}.png"
        cv2.imwrite(str(args.out / name), rgb)
        entry = {"file": name, "source": str(path), "package": packages.get(str(path), "unknown")}
        manifest.append({**entry, "original_size": list(bgr.shape[:2])})
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"wrote {len(manifest)} images to {args.out} (from {len(sources)} source files)")


if __name__ == "__main__":
    main()
