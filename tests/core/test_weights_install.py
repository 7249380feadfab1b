"""From download to restored image: fetch a published-layout checkpoint, convert it, run it."""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from inpaint_core.cli import main
from inpaint_core.io import read_image, read_mask
from inpaint_core.weights import catalogue, fetch, get_entry, installed_path, weights_info
from inpaint_core.weights import published as catalogue_module

from ..http_server import (
    LoopbackServer,
    loopback_server,  # noqa: F401  (the `server` fixture)
)

ROOT = Path(__file__).resolve().parents[2]
LAMA = ROOT / "tests" / "fixtures" / "lama" / "ffc"
SAMPLE = ROOT / "sample_data"


def _big_lama_zip() -> bytes:
    """The LaMa fixture laid out as LaMa's published big-lama.zip: big-lama/config.yaml..."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(LAMA.rglob("*")):
            if path.is_file():
                archive.write(path, "big-lama/" + path.relative_to(LAMA).as_posix())
    return buffer.getvalue()


@pytest.fixture
def served_lama(
    tmp_path: Path, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> LoopbackServer:
    monkeypatch.setenv("INPAINT_HOME", str(tmp_path / "home"))
    server.files["/big-lama.zip"] = _big_lama_zip()
    entry = dataclasses.replace(get_entry("big-lama"), url=f"{server.url}/big-lama.zip")
    others = tuple(e for e in catalogue() if e.name != "big-lama")
    monkeypatch.setattr(catalogue_module, "CATALOGUE", (entry, *others))
    return server


def test_fetch_installs_runs_and_records_its_source(
    served_lama: LoopbackServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["weights", "fetch", "big-lama"]) == 0
    out = capsys.readouterr().out
    assert out.index("licence: Apache-2.0") < out.index("installed ")
    installed = installed_path("big-lama")
    assert installed.is_file() and installed.with_suffix(".json").is_file()

    info = weights_info("big-lama")
    assert info["method"] == "lama"
    assert info["licence"] == "Apache-2.0"
    assert info["source"]["catalogue"] == "big-lama"
    assert info["source"]["url"].endswith("/big-lama.zip")
    assert len(info["source"]["download_sha256"]) == 64

    output = tmp_path / "lama.png"
    args = [str(SAMPLE / "astronaut_damaged.png"), str(SAMPLE / "astronaut_mask.png")]
    assert main(["run", *args, "-m", "lama", "--weights", "big-lama", "-o", str(output)]) == 0
    image, mask = read_image(args[0]), read_mask(args[1]) != 0
    restored = read_image(output)
    assert np.array_equal(restored[~mask], image[~mask])
    assert not np.array_equal(restored[mask], image[mask])

    # A second fetch finds it installed and downloads nothing.
    asked = len(served_lama.requests)
    assert fetch("big-lama").installed_before
    assert len(served_lama.requests) == asked

    capsys.readouterr()
    assert main(["weights", "info", "big-lama", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sha256"] == info["sha256"]


def test_a_download_of_the_wrong_layout_is_refused_and_nothing_installed(
    served_lama: LoopbackServer, capsys: pytest.CaptureFixture[str]
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("other/readme.txt", "not a checkpoint")
    served_lama.files["/big-lama.zip"] = buffer.getvalue()
    assert main(["weights", "fetch", "big-lama"]) == 2
    assert "holds no 'big-lama'" in capsys.readouterr().err
    assert not installed_path("big-lama").exists()


def test_import_refuses_to_overwrite_and_names_mismatching_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "w.safetensors"
    assert main(["weights", "import", "lama", str(LAMA), "--output", str(output)]) == 0
    assert main(["weights", "import", "lama", str(LAMA), "--output", str(output)]) == 2
    assert "--overwrite" in capsys.readouterr().err or output.is_file()
    wrong = tmp_path / "w.pt"
    assert main(["weights", "import", "lama", str(LAMA), "--output", str(wrong)]) == 2
    assert "must end in .safetensors" in capsys.readouterr().err
    assert main(["weights", "import", "nope", str(LAMA), "--output", str(output)]) == 2
    assert "valid: context-encoder-pytorch, edge-connect, lama" in capsys.readouterr().err
