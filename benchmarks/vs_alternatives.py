"""The tool against what a user would write instead, on the same scans and masks (issue 26).

    python benchmarks/vs_alternatives.py [--sizes 4096,16384,32768] [--damage 1%,sparse]
        [--approaches tool,script,dask] [--repeats 3] [--method telea] [--work DIR]

Approaches, each in a fresh interpreter (imports count, as they do for a user):

- ``tool``: ``inpaint restore SCAN --mask MASK -m METHOD -o OUT.zarr`` (these plain zarr
  scans have no levels, so by default the output is level 0 alone, as the script's is);
- ``tool-link``: the same with ``--intact link`` (intact chunks hard-linked, not copied);
- ``tool-pyramid``: the same with ``--pyramid always``, which also builds the 2x levels the
  scan lacks (more than the script does);
- ``script``: load the whole scan and mask with numpy, one ``cv2.inpaint`` call, write zarr;
- ``dask``: ``dask.array.map_overlap`` of ``cv2.inpaint`` over the scan's chunks (depth 16,
  the telea method's context margin), written with ``to_zarr``.

Scans come from ``sample_data/make_scan.py`` (uint8 RGB, 1024 px chunks), made once into
``--work``. Damage ``1%`` spreads 1 % damage over the whole scan; ``sparse`` is the 4096 px
scan's 1 % damage (the same cracks and losses) in the top-left 4096 px of a larger scan.
Repeats are interleaved (tool, script, dask, tool, ...); the table gives min and median wall
time, peak RSS of the child, and each time over the script's min. Every output is checked to
equal the source outside the mask (chunk by chunk). Figures go to ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RADIUS = 5
DEPTH = 16
BASE = 4096
#: The tool's approaches and the ``inpaint restore`` options each adds.
TOOL_FLAGS = {
    "tool": [],
    "tool-link": ["--intact", "link"],  # intact chunks hard-linked, not copied
    "tool-pyramid": ["--pyramid", "always"],  # a pyramid although the scan has none
}


def _scan(work: Path, size: int, damage: str) -> Path:
    """Make (once) the scan of ``size`` with ``damage`` ('1%' or 'sparse'); return its folder."""
    out = work / f"scan-{size}-{damage.rstrip('%')}"
    if (out / "mask.zarr").exists():
        return out
    argv = [sys.executable, str(ROOT / "sample_data" / "make_scan.py"), "--size", str(size),
            "--chunk", "1024", "--out", str(out), "--overwrite", "--seed", "2026"]
    if damage == "sparse":
        argv += ["--damage-extent", str(BASE), "--damage", repr(0.01 * BASE**2 / size**2)]
    else:
        argv += ["--damage", str(float(damage.rstrip("%")) / 100)]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return out


def _peak_rss_mb() -> float:
    """This process's peak RSS in MB: Linux's ``VmHWM`` (its own memory since exec), else
    ``ru_maxrss``, which on Linux also counts the parent's RSS at fork (read as the same number
    for every child before)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(approach: str, scan: Path, out: Path, method: str) -> None:
    """Run one approach in this process (called in a child); print its peak RSS as JSON."""
    if approach in TOOL_FLAGS:
        from inpaint_core.cli import main

        argv = ["restore", str(scan / "scan.zarr"), "--mask", str(scan / "mask.zarr"),
                "-m", method, "-o", str(out), *TOOL_FLAGS[approach]]
        code = main(argv)
        if code:
            raise SystemExit(code)
    elif approach == "script":
        import cv2
        import numpy as np
        import zarr

        flag = cv2.INPAINT_TELEA if method == "telea" else cv2.INPAINT_NS
        image = zarr.open_array(scan / "scan.zarr", mode="r")[...]
        mask = zarr.open_array(scan / "mask.zarr", mode="r")[...].astype(np.uint8)
        restored = cv2.inpaint(image, mask, RADIUS, flag)
        zarr.create_array(out, data=restored, chunks=(1024, 1024, 3))
    elif approach == "dask":
        import cv2
        import dask.array as da
        import numpy as np

        flag = cv2.INPAINT_TELEA if method == "telea" else cv2.INPAINT_NS

        def fill(block: np.ndarray, holes: np.ndarray) -> np.ndarray:
            if not holes.any():
                return block
            return cv2.inpaint(np.ascontiguousarray(block), holes.astype(np.uint8), RADIUS, flag)

        image = da.from_zarr(str(scan / "scan.zarr"))
        mask = da.from_zarr(str(scan / "mask.zarr"))[:, :, None]
        restored = da.map_overlap(
            fill, image, mask, depth={0: DEPTH, 1: DEPTH, 2: 0}, boundary="none",
            dtype=image.dtype, align_arrays=False,
        )
        restored.to_zarr(str(out))
    else:
        valid = ", ".join([*TOOL_FLAGS, "script", "dask"])
        raise ValueError(f"unknown approach {approach!r}; valid: {valid}")
    print(json.dumps({"peak_rss_mb": _peak_rss_mb()}))


def _output_array(approach: str, out: Path) -> object:
    """The output array of ``approach`` (the tool: its level 0), indexable by (rows, cols)."""
    import zarr

    if approach in TOOL_FLAGS:
        from inpaint_core.io.store import level_array

        return level_array(zarr.open_group(str(out), mode="r"), "0")
    return zarr.open_array(out, mode="r")


def check_outside(approach: str, scan: Path, out: Path) -> bool:
    """True if the output equals the source at every pixel outside the mask (row bands)."""
    import numpy as np
    import zarr

    source = zarr.open_array(scan / "scan.zarr", mode="r")
    mask = zarr.open_array(scan / "mask.zarr", mode="r")
    result = _output_array(approach, out)
    if result.shape != source.shape or result.dtype != source.dtype:
        return False
    for top in range(0, source.shape[0], 2048):
        rows = slice(top, top + 2048)
        keep = ~mask[rows, :]
        if not np.array_equal(result[rows, :][keep], source[rows, :][keep]):
            return False
    return True


def _time_child(approach: str, scan: Path, out: Path, method: str) -> tuple[float, float]:
    import shutil

    shutil.rmtree(out, ignore_errors=True)
    argv = [sys.executable, __file__, "--run-one", approach, "--scan", str(scan),
            "--out", str(out), "--method", method]
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"{approach} failed ({done.returncode}): {done.stderr[-2000:]}")
    return wall, json.loads(done.stdout.strip().splitlines()[-1])["peak_rss_mb"]


def main() -> None:
    """Parse arguments, make the scans, run the interleaved repeats and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="4096", help="comma-separated scan sides")
    parser.add_argument("--damage", default="1%,sparse", help="'1%%', 'sparse' or both")
    parser.add_argument("--approaches", default="tool,script,dask",
                        help="also: tool-link, tool-pyramid")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--method", default="telea", choices=("telea", "navier-stokes"))
    parser.add_argument("--work", default=str(ROOT / "out" / "vs_alternatives"))
    parser.add_argument("--run-one", help=argparse.SUPPRESS)
    parser.add_argument("--scan", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_one:
        run_one(args.run_one, Path(args.scan), Path(args.out), args.method)
        return
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    approaches = args.approaches.split(",")
    print("| scan | damage | approach | min s | median s | peak RSS MB | x script | outside ok |")
    print("|---|---|---|---|---|---|---|---|")
    for size in (int(s) for s in args.sizes.split(",")):
        for damage in args.damage.split(","):
            if damage == "sparse" and size <= BASE:
                continue  # sparse equals 1 % at the base size
            scan = _scan(work, size, damage)
            walls: dict[str, list[float]] = {a: [] for a in approaches}
            peaks: dict[str, float] = {}
            ok: dict[str, bool] = {}
            for repeat in range(args.repeats):
                for approach in approaches:
                    out = work / f"out-{approach}.zarr"
                    try:
                        wall, peak = _time_child(approach, scan, out, args.method)
                    except RuntimeError as error:
                        print(f"<!-- {size} {damage} {approach}: {error} -->", flush=True)
                        walls[approach] = []
                        continue
                    walls[approach].append(wall)
                    peaks[approach] = max(peaks.get(approach, 0.0), peak)
                    if repeat == 0:
                        ok[approach] = check_outside(approach, scan, out)
            base = min(walls["script"]) if walls.get("script") else float("nan")
            for approach in approaches:
                times = walls[approach]
                if not times:
                    print(f"| {size} | {damage} | {approach} | failed | | | | |")
                    continue
                print(
                    f"| {size} | {damage} | {approach} | {min(times):.2f} | "
                    f"{statistics.median(times):.2f} | {peaks[approach]:.0f} | "
                    f"{min(times) / base:.2f} | {'yes' if ok.get(approach) else 'NO'} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
