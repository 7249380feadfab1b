"""Print a Markdown table of every shipped checkpoint from its sidecar.

    python benchmarks/weights_table.py [--folder plugins/method_registry/inpaint_methods/weights]

One row per ``NAME.json``: the classical prior it starts from, the inference networks'
parameter count (from the weights file), the training budget (steps, batch, crop size,
hardware, wall time) and the held-out hole PSNR at centre 25 % and free-form 40 % beside
``telea``'s on the same cases (``extra.heldout``, written by ``benchmarks/ship_weights.py``).
The weights README and the closing notes use it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from safetensors import safe_open

from inpaint_core.checkpoint import CheckpointInfo
from inpaint_core.evaluation.runner import training_budget

FOLDER = Path(__file__).resolve().parents[1] / "plugins/method_registry/inpaint_methods/weights"


def parameters(weights: Path) -> int:
    """Number of floating-point values stored in a safetensors file (weights and buffers)."""
    total = 0
    with safe_open(str(weights), framework="pt") as handle:
        for key in handle.keys():  # noqa: SIM118 (safe_open is not a mapping)
            if "running" in key or "num_batches" in key:
                continue
            shape = handle.get_slice(key).get_shape()
            count = 1
            for side in shape:
                count *= side
            total += count
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folder", type=Path, default=FOLDER)
    args = parser.parse_args()
    print("| method | prior | params | steps | batch | size | hardware | minutes "
          "| centre 25 % (telea) | free-form 40 % (telea) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |")
    for sidecar in sorted(args.folder.glob("*.json")):
        info = CheckpointInfo.from_json(sidecar.read_text())
        held = info.extra.get("heldout", {})
        spent = training_budget(info)
        count = parameters(sidecar.with_suffix(".safetensors")) / 1e6
        centre = (f"{held['hole_psnr_centre_25']:.2f} ({held['telea_hole_psnr_centre_25']:.2f})"
                  if held else "n/a")
        free = (f"{held['hole_psnr_free_form_40']:.2f} ({held['telea_hole_psnr_free_form_40']:.2f})"
                if held else "n/a")
        budget = " | ".join(str(spent[name]) for name in ("steps", "batch", "size", "hardware"))
        print(f"| `{info.method}` | {spent['prior']} | {count:.2f} M | {budget} "
              f"| {spent['minutes']:.0f} | {centre} | {free} |")


if __name__ == "__main__":
    main()
