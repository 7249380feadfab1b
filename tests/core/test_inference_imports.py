"""Inference never imports the trainer: running a learned method leaves ``inpaint_core.training``
out of ``sys.modules`` (checked in a fresh interpreter, so this test process's imports do not
count)."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import json, sys
import numpy as np
import inpaint_core.learned
from inpaint_core import get_method, inpaint, list_methods
from inpaint_core.testing import contract_image, contract_mask

image = np.rint(contract_image(40, 56)[:, :, :3] * 255).astype(np.uint8)
mask = contract_mask(40, 56)
restored = inpaint(image, mask, "edge-gan", device="cpu")
assert restored.shape == image.shape and not np.array_equal(restored[mask], image[mask])
after_run = sorted(name for name in sys.modules if name.startswith("inpaint_core.training"))
for info in list_methods():
    if info.learned:
        get_method(info.name)  # imports the method's module
after_all = sorted(name for name in sys.modules if name.startswith("inpaint_core.training"))
print(json.dumps({"after_run": after_run, "after_all": after_all}))
"""


def test_learned_inference_does_not_import_training() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == {"after_run": [], "after_all": []}
