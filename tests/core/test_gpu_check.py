"""``benchmarks/gpu_check.py --dry-run``: the GPU check's code paths run tiny on the CPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py"


def test_dry_run_writes_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "gpu_check.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--dry-run", "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["dry_run"] is True and report["device"] == "cpu"
    assert {"lama", "edge-gan"} <= set(report["methods"])
    assert set(report["devices"]) == set(report["methods"])
    for name, entry in report["devices"].items():
        # the same device twice: equal; the bf16 keys exist, empty with the reason
        assert entry["fp32_max_diff"] == 0 and entry["fp32_ok"], name
        assert entry["psnr_fp32"] > 0
        assert entry["psnr_drop_bf16"] is None and "no CUDA" in entry["bf16_note"]
    assert 0.015 < report["scan"]["hole_fraction"] < 0.025
    for name in ("lama", "edge-gan"):
        run = report["restore"][name]
        assert run["tiles_done"] >= 1 and run["tiles_per_second"] > 0, name
        assert 0 < run["busy_share_of_wall"] <= 1
        assert run["real_ooms"] == 0 and run["peak_gpu_mb"] is None
        assert "nvml_utilisation" in run and "tile_peak_gpu_mb" in run
    oom = report["oom"]
    assert oom["simulated"] and oom["simulated_ooms"] >= 1 and oom["backoff_worked"]
    assert oom["batch_sizes_seen"][0] == oom["oversized_batch"]
    assert oom["settled_batch"] < oom["oversized_batch"] and oom["tiles_done"] >= 1
    assert any("retrying with batch" in message for message in oom["backoff_messages"])
    assert "peak_gpu_mb" in report
