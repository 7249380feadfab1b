"""GPU check of the learned methods: CUDA against the CPU, tiled throughput, OOM back-off.

    python benchmarks/gpu_check.py --out gpu_check.json [--device cuda] [--scan-size 32768]
        [--restore-seconds 60] [--methods all] [--dry-run]

Written for the day a GPU is lent (about 5 minutes on one H100; the JSON is written after
every phase, so a run cut short still leaves what it measured). It checks:

1. ``devices``: every learned method (``list_methods()`` where ``learned``) on a photograph
   with a free-form hole, on the device against the CPU. fp32: the largest |difference| in
   uint8 grey levels (target <= 1). bf16: the hole PSNR (against the undamaged photograph) in
   fp32 and in bf16, and the drop. Methods without shipped weights (``lama``) get random
   weights in their published architecture (``LamaConfig()``, big-lama), saved as a checkpoint
   into a temporary folder and passed as ``weights``.
2. ``restore``: ``lama`` and ``edge-gan`` through the ``inpaint restore`` engine
   (:func:`~inpaint_core.tiling.engine.iter_restore`) on a synthetic scan of
   ``--scan-size``\\ ² pixels (32768² = 1.07 gigapixel) with 2 % damage, bf16, the batch sized
   to the GPU's memory from the peak of one tile. Each run stops after ``--restore-seconds``
   (resumable, as a user's Ctrl-C): tiles/s over the tiles done, the engine's setup time, the
   busy fraction (NVML utilisation sampled every 0.1 s when ``pynvml`` is installed, and
   always the share of wall time spent in the method's batches, CUDA synchronised), peak GPU
   memory.
3. ``oom``: an oversized batch (enough tiles to need 2.5x the GPU's memory) through the same
   engine: the batch sizes tried, whether a real ``torch.cuda.OutOfMemoryError`` was raised,
   the batch the back-off settled on, and that tiles were then restored.

``--dry-run`` runs the same code paths tiny on the CPU (a 1024² scan, fp32, a simulated
out-of-memory error above 2 tiles) and writes the same keys; ``tests/core/test_gpu_check.py``
runs it so that the script cannot rot. bf16 is never run on the CPU (its autocast hangs on
some CPUs): there the bf16 entries are null with the reason.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from inpaint_core import inpaint, list_methods
from inpaint_core.masks import make_mask
from inpaint_core.tiling import engine
from inpaint_core.tiling.executor import SerialExecutor

RESTORE_METHODS = ("lama", "edge-gan")
#: Hole pixels take this colour in the synthetic scan (the plaster of ``make_scan.py``).
PLASTER = (222, 214, 196)
SCHEMA = 1


#: ``--dry-run``: a narrow, shallow LaMa (the same layers as big-lama, fewer of them).
DRY_LAMA = {"ngf": 8, "n_blocks": 2}
#: ``--dry-run``: tile sides (cores of 128 px) for the engine.
DRY_TILES = {"lama": 384, "edge-gan": 256}


def random_lama_weights(folder: Path, **changes: Any) -> Path:
    """A LaMa checkpoint with random weights in ``folder``: ``LamaConfig()`` (big-lama) with
    ``changes``.

    The BatchNorm running statistics are randomised too, so that folding or fusing them is
    exercised as with trained weights."""
    from inpaint_core.checkpoint import flatten_state, save_checkpoint
    from inpaint_core.learned import config_to_dict
    from inpaint_core.nn.layers.ffc import LamaConfig
    from inpaint_methods.lama import LamaNetworks

    torch.manual_seed(0)
    config = LamaConfig(**changes)
    networks = LamaNetworks(config)
    for module in networks.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.1, 0.1)
    states = {name: child.state_dict() for name, child in networks.named_children()}
    path = folder / "lama.safetensors"
    save_checkpoint(
        path,
        flatten_state(states),
        method="lama",
        config=config_to_dict(config),
        step=0,
        extra={"note": "random weights for benchmarks/gpu_check.py"},
    )
    return path


def weights_for(name: str, folder: Path, dry: bool = False) -> dict[str, Any]:
    """Extra parameters for method ``name``: random big-lama weights for ``lama`` (a tiny LaMa
    with ``dry``), made once per ``folder``."""
    if name == "lama":
        path = folder / "lama.safetensors"
        if not path.exists():
            random_lama_weights(folder, **(DRY_LAMA if dry else {}))
        return {"weights": str(path)}
    if name == "mi-gan":  # no shipped weights either: random ones, the published 512 layout
        from inpaint_core.checkpoint import flatten_state, save_checkpoint
        from inpaint_core.learned import config_to_dict
        from inpaint_methods.mi_gan import MiGanConfig, MiGanNetworks

        path = folder / "mi-gan.safetensors"
        if not path.exists():
            torch.manual_seed(0)
            config = MiGanConfig(**({"resolution": 128, "ch_base": 1024, "ch_max": 24}
                                    if dry else {}))
            states = {name: child.state_dict()
                      for name, child in MiGanNetworks(config).named_children()}
            save_checkpoint(path, flatten_state(states), method="mi-gan",
                            config=config_to_dict(config), step=0)
        return {"weights": str(path)}
    return {}


def photograph(size: int) -> np.ndarray:
    """uint8 ``(size, size, 3)``: scikit-image's astronaut, resized."""
    from skimage import data, transform

    resized = transform.resize(data.astronaut(), (size, size), anti_aliasing=True)
    return np.rint(resized * 255).astype(np.uint8)


def hole_psnr(result: np.ndarray, truth: np.ndarray, hole: np.ndarray) -> float:
    """PSNR in dB over the hole pixels of two uint8 images (inf when equal)."""
    diff = result[hole].astype(np.float64) - truth[hole].astype(np.float64)
    mse = float(np.mean(diff**2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def check_devices(
    names: list[str], device: str, size: int, folder: Path, bf16: bool
) -> dict[str, Any]:
    """Each method on ``device`` against the CPU; see the module docstring (1)."""
    truth = photograph(size)
    hole = make_mask("free_form", (size, size), 0.2, seed=0)
    damaged = truth.copy()
    damaged[hole] = 255
    out: dict[str, Any] = {}
    for name in names:
        extra = weights_for(name, folder, not bf16)
        entry: dict[str, Any] = {"size": size}
        started = time.perf_counter()
        cpu = inpaint(damaged, hole, method=name, device="cpu", precision="fp32", **extra)
        entry["cpu_seconds"] = time.perf_counter() - started
        on_device = inpaint(damaged, hole, method=name, device=device, precision="fp32", **extra)
        started = time.perf_counter()
        on_device = inpaint(damaged, hole, method=name, device=device, precision="fp32", **extra)
        entry["device_seconds"] = time.perf_counter() - started
        diff = np.abs(cpu.astype(np.int16) - on_device.astype(np.int16))
        entry["fp32_max_diff"] = int(diff.max())
        entry["fp32_pixels_over_1"] = int((diff > 1).sum())
        entry["fp32_ok"] = bool(diff.max() <= 1)
        entry["psnr_fp32"] = hole_psnr(on_device, truth, hole)
        if bf16:
            half = inpaint(damaged, hole, method=name, device=device, precision="bf16", **extra)
            entry["psnr_bf16"] = hole_psnr(half, truth, hole)
            entry["psnr_drop_bf16"] = entry["psnr_fp32"] - entry["psnr_bf16"]
            entry["bf16_max_diff"] = int(np.abs(half.astype(np.int16) - on_device).max())
            entry["bf16_note"] = None
        else:
            entry.update(
                psnr_bf16=None,
                psnr_drop_bf16=None,
                bf16_max_diff=None,
                bf16_note="not run: no CUDA (bf16 autocast on the CPU is not used)",
            )
        out[name] = entry
    return out


def make_scan(folder: Path, size: int, chunk: int, damage: float) -> tuple[Path, Path, float]:
    """A uint8 RGB zarr scan ``(size, size, 3)`` and its bool mask with ``damage`` hole share.

    Fast to write at a gigapixel: a few painted tiles and a few free-form masks, chosen per
    chunk, hole pixels in plaster colour. Returns the two paths and the hole fraction."""
    import zarr

    rng = np.random.default_rng(2026)
    photo = photograph(chunk)
    paintings = [np.roll(photo, int(shift), axis=1) for shift in rng.integers(0, chunk, 4)]
    holes = [make_mask("free_form", (chunk, chunk), damage, seed=i) for i in range(4)]
    scan = zarr.create_array(store=str(folder / "scan.zarr"), shape=(size, size, 3),
                             chunks=(chunk, chunk, 3), dtype="uint8")
    mask = zarr.create_array(store=str(folder / "mask.zarr"), shape=(size, size),
                             chunks=(chunk, chunk), dtype="bool")
    blocks = size // chunk
    damaged = 0
    for row in range(blocks):
        picture = np.empty((chunk, size, 3), np.uint8)
        hole = np.empty((chunk, size), bool)
        for col in range(blocks):
            which = (row * 7 + col * 3) % 4
            cols = slice(col * chunk, (col + 1) * chunk)
            picture[:, cols] = paintings[which]
            hole[:, cols] = holes[(which + row) % 4]
        picture[hole] = PLASTER
        scan[row * chunk : (row + 1) * chunk] = picture
        mask[row * chunk : (row + 1) * chunk] = hole
        damaged += int(hole.sum())
    return folder / "scan.zarr", folder / "mask.zarr", damaged / size**2


class BatchMeter:
    """Meters the engine's method calls: batch sizes, seconds in batches (CUDA synchronised),
    real out-of-memory errors, and a simulated one above ``simulate_above`` tiles."""

    def __init__(self, device: str, simulate_above: int | None = None) -> None:
        self.device = device
        self.simulate_above = simulate_above
        self.sizes: list[int] = []
        self.busy = 0.0
        self.real_ooms = 0
        self.simulated_ooms = 0

    def executor(self, batch: int) -> SerialExecutor:
        """The engine's this-thread executor, starting at ``batch`` tiles, with every method
        call (the OOM back-off's unit) going through the meter."""
        meter = self

        class Metered(SerialExecutor):
            def run_batch(self, method: Any, tiles: Any, items: Any, seed: int) -> list[Any]:
                meter.sizes.append(len(tiles))
                if meter.simulate_above is not None and len(tiles) > meter.simulate_above:
                    meter.simulated_ooms += 1
                    raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated by --dry-run)")
                started = time.perf_counter()
                try:
                    out = super().run_batch(method, tiles, items, seed)
                    if meter.device.startswith("cuda"):
                        torch.cuda.synchronize(meter.device)
                except torch.cuda.OutOfMemoryError:
                    meter.real_ooms += 1
                    raise
                finally:
                    meter.busy += time.perf_counter() - started
                return out

        return Metered(batch)


class UtilisationSampler:
    """NVML GPU utilisation sampled every 0.1 s in a thread, when ``pynvml`` is installed."""

    def __init__(self, device: str) -> None:
        self.samples: list[int] = []
        self.handle: Any = None
        self._stop = threading.Event()
        if not device.startswith("cuda"):
            return
        try:
            import pynvml

            pynvml.nvmlInit()
            index = torch.device(device).index or 0
            self.handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            self._nvml = pynvml
        except Exception:  # no pynvml or no NVML: the busy share of wall time stands alone
            self.handle = None

    def __enter__(self) -> UtilisationSampler:
        if self.handle is not None:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.samples.append(self._nvml.nvmlDeviceGetUtilizationRates(self.handle).gpu)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()

    def mean(self) -> float | None:
        """Mean utilisation in [0, 1], or None without NVML samples."""
        return float(np.mean(self.samples)) / 100 if self.samples else None


def reset_peak(device: str) -> None:
    """Reset the peak-memory counter of a CUDA device (no-op elsewhere)."""
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_mb(device: str) -> float | None:
    """Peak allocated memory in MB since :func:`reset_peak`, or None off CUDA."""
    if not device.startswith("cuda"):
        return None
    return torch.cuda.max_memory_allocated(device) / 2**20


def tile_peak_mb(
    name: str, device: str, precision: str, folder: Path, side: int | None, dry: bool
) -> float | None:
    """Peak GPU memory of one ``side`` tile of ``name`` (None: its preferred size); None off
    CUDA."""
    from inpaint_core import get_method

    method_class = get_method(name)
    side = side or method_class.info.preferred_tile
    extra = weights_for(name, folder, dry)
    method = method_class(device=device, precision=precision, **extra)
    image = photograph(side)
    hole = make_mask("free_form", (side, side), 0.2, seed=1)
    method.run_batch([image.astype(np.float32) / 255], [hole], 0)  # kernels chosen, cache warm
    reset_peak(device)
    method.run_batch([image.astype(np.float32) / 255], [hole], 0)
    return peak_mb(device)


def restore_run(
    name: str, scan: Path, mask: Path, out: Path, *, device: str, precision: str, batch: int,
    seconds: float, folder: Path, tile: int | None, dry: bool,
    simulate_above: int | None = None,
    until: Callable[[BatchMeter], bool] | None = None,
) -> dict[str, Any]:
    """One metered ``iter_restore`` run, stopped after ``seconds`` (or when ``until``)."""
    params = {"precision": precision, **weights_for(name, folder, dry)}
    meter = BatchMeter(device, simulate_above)
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    log = logging.getLogger("inpaint_core.tiling")
    log.addHandler(handler)
    reset_peak(device)
    started = time.perf_counter()
    first: float | None = None
    stop_at = [math.inf]

    def should_stop() -> bool:
        return time.perf_counter() > stop_at[0] or (until is not None and until(meter))

    done = total = 0
    try:
        with UtilisationSampler(device) as sampler:
            events = engine.iter_restore(
                str(scan), str(mask), name, out, tile=tile, device=device, params=params,
                should_stop=should_stop, intact="link", executor=meter.executor(batch),
            )
            for event in events:
                if first is None:
                    first = time.perf_counter()
                    stop_at[0] = first + seconds
                done, total = event.tiles_done, event.tiles_total
    finally:
        log.removeHandler(handler)
    wall = time.perf_counter() - started
    working = wall - ((first or started) - started)
    return {
        "method": name, "precision": precision, "tile": tile, "batch_asked": batch,
        "batch_sizes_seen": sorted(set(meter.sizes), reverse=True),
        "tiles_done": done, "tiles_total": total, "setup_seconds": (first or started) - started,
        "seconds": working, "tiles_per_second": done / working if working > 0 else None,
        "busy_share_of_wall": meter.busy / working if working > 0 else None,
        "nvml_utilisation": sampler.mean(), "peak_gpu_mb": peak_mb(device),
        "real_ooms": meter.real_ooms, "simulated_ooms": meter.simulated_ooms,
        "backoff_messages": [r.getMessage() for r in records if "out of memory" in r.getMessage()],
    }


def sized_batch(per_tile_mb: float | None, device: str, share: float, cap: int) -> int:
    """Tiles per batch using ``share`` of the device's memory (2 off CUDA)."""
    if per_tile_mb is None or not device.startswith("cuda"):
        return 2
    total = torch.cuda.get_device_properties(device).total_memory / 2**20
    return max(1, min(cap, int(share * total / per_tile_mb)))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the checks and write the JSON; returns what was written."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="the JSON file to write")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--methods", default="all", help="learned methods, comma-separated")
    parser.add_argument("--scan-size", type=int, default=32768)
    parser.add_argument("--restore-seconds", type=float, default=60.0)
    parser.add_argument("--dry-run", action="store_true", help="tiny, on the CPU, simulated OOM")
    args = parser.parse_args(argv)
    dry = args.dry_run
    device = "cpu" if dry else args.device
    if not dry and not torch.cuda.is_available():
        parser.error("no CUDA device: run with --dry-run on a machine without a GPU")
    precision = "fp32" if dry else "bf16"
    names = [info.name for info in list_methods() if info.learned]
    if args.methods != "all":
        names = args.methods.split(",")
    scan_size = 384 if dry else args.scan_size
    chunk = 128 if dry else 1024
    tiles: dict[str, int | None] = dict(DRY_TILES) if dry else {}
    report: dict[str, Any] = {
        "schema": SCHEMA, "dry_run": dry, "device": device, "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(device) if device.startswith("cuda") else None,
        "precision_restore": precision, "methods": names,
    }

    def save() -> None:
        args.out.write_text(json.dumps(report, indent=2, allow_nan=True) + "\n")

    with tempfile.TemporaryDirectory(prefix="gpu-check-") as temp:
        folder = Path(temp)
        started = time.perf_counter()
        report["devices"] = check_devices(names, device, 64 if dry else 512, folder, not dry)
        report["devices_seconds"] = time.perf_counter() - started
        save()
        started = time.perf_counter()
        scan, mask, fraction = make_scan(folder, scan_size, chunk, 0.02)
        report["scan"] = {
            "side": scan_size,
            "pixels": scan_size**2,
            "chunk": chunk,
            "hole_fraction": fraction,
            "seconds": time.perf_counter() - started,
        }
        save()
        report["restore"] = {}
        for name in [n for n in RESTORE_METHODS if n in names]:
            per_tile = tile_peak_mb(name, device, precision, folder, tiles.get(name), dry)
            batch = sized_batch(per_tile, device, 0.6, 64)
            entry = restore_run(name, scan, mask, folder / f"{name}.zarr", device=device,
                                precision=precision, batch=batch, folder=folder,
                                tile=tiles.get(name), dry=dry,
                                seconds=2.0 if dry else args.restore_seconds)
            entry["tile_peak_gpu_mb"] = per_tile
            report["restore"][name] = entry
            save()
        oom_name = "edge-gan" if "edge-gan" in names else names[0]
        per_tile = tile_peak_mb(oom_name, device, precision, folder, tiles.get(oom_name), dry)
        oversized = 4 if dry else sized_batch(per_tile, device, 2.5, 512)
        entry = restore_run(
            oom_name, scan, mask, folder / "oom.zarr", device=device, precision=precision,
            batch=oversized, folder=folder, seconds=2.0 if dry else 60.0,
            tile=tiles.get(oom_name), dry=dry,
            simulate_above=2 if dry else None,
            until=lambda meter: len(meter.sizes) >= 3 and meter.sizes[-1] < oversized
            and meter.sizes[-1] == meter.sizes[-2],
        )
        entry["tile_peak_gpu_mb"] = per_tile
        halved = [size for size in entry["batch_sizes_seen"] if size < oversized]
        entry.update(
            oversized_batch=oversized, simulated=dry,
            backoff_worked=bool(halved) and entry["tiles_done"] > 0
            and bool(entry["real_ooms"] or entry["simulated_ooms"]),
            settled_batch=min(halved) if halved else None,
        )
        report["oom"] = entry
        peaks = [entry["peak_gpu_mb"], entry["tile_peak_gpu_mb"]]
        peaks += [r["peak_gpu_mb"] for r in report["restore"].values()]
        known = [peak for peak in peaks if peak is not None]
        report["peak_gpu_mb"] = max(known) if known else None
        save()
    return report


if __name__ == "__main__":
    result = main()
    print(json.dumps(result, indent=2))
