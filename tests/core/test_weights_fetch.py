"""Downloading published weights from a real HTTP server on the loopback address."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path

import pytest

from inpaint_core.cli import main
from inpaint_core.errors import InvalidWeightsError, MissingWeightsError, ParameterError
from inpaint_core.weights import (
    DownloadCancelledError,
    DownloadError,
    catalogue,
    get_entry,
    installed_path,
    resolve_weights,
)
from inpaint_core.weights import published as catalogue_module
from inpaint_core.weights.download import download

from ..http_server import LoopbackServer as _Server
from ..http_server import closed_port as _closed_port
from ..http_server import loopback_server  # noqa: F401  (the `server` fixture)

PAYLOAD = bytes(range(256)) * 2000  # 512,000 bytes


def test_download_reports_progress_and_checks_the_digest(tmp_path: Path, server: _Server):
    server.files["/w.bin"] = PAYLOAD
    seen: list[tuple[int, int]] = []
    digest = "sha256:" + hashlib.sha256(PAYLOAD).hexdigest()
    target = download(f"{server.url}/w.bin", tmp_path / "w.bin", digest,
                      progress=lambda done, total: seen.append((done, total)))
    assert target.read_bytes() == PAYLOAD
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert not (tmp_path / "w.bin.part").exists()
    # Already there with the right digest: nothing is asked of the server.
    asked = len(server.requests)
    download(f"{server.url}/w.bin", tmp_path / "w.bin", digest)
    assert len(server.requests) == asked


def test_md5_digests_are_checked_too(tmp_path: Path, server: _Server) -> None:
    server.files["/w.bin"] = PAYLOAD
    digest = "md5:" + hashlib.md5(PAYLOAD).hexdigest()
    assert download(f"{server.url}/w.bin", tmp_path / "w.bin", digest).is_file()


def test_a_cut_connection_is_resumed_with_a_range_request(tmp_path: Path, server: _Server):
    server.files["/w.bin"] = PAYLOAD
    server.cut_at = 100_000
    target = download(f"{server.url}/w.bin", tmp_path / "w.bin", None)
    assert target.read_bytes() == PAYLOAD
    assert server.requests[0] is None
    assert server.requests[1] is not None and server.requests[1].startswith("bytes=")
    assert int(server.requests[1][6:].split("-")[0]) >= 65_536  # not from the start


def test_a_cancelled_download_resumes_in_the_next_call(tmp_path: Path, server: _Server) -> None:
    server.files["/w.bin"] = PAYLOAD
    target = tmp_path / "w.bin"
    with pytest.raises(DownloadCancelledError, match="resumes"):
        download(f"{server.url}/w.bin", target, None,
                 cancelled=lambda: (tmp_path / "w.bin.part").exists()
                 and (tmp_path / "w.bin.part").stat().st_size > 200_000)
    kept = (tmp_path / "w.bin.part").stat().st_size
    assert 200_000 < kept < len(PAYLOAD)
    download(f"{server.url}/w.bin", target, None)
    assert server.requests[-1] == f"bytes={kept}-"
    assert target.read_bytes() == PAYLOAD


def test_a_server_without_ranges_restarts_from_the_first_byte(tmp_path: Path, server: _Server):
    server.files["/w.bin"] = PAYLOAD
    server.ranges = False
    (tmp_path / "w.bin.part").write_bytes(PAYLOAD[:1000])
    assert download(f"{server.url}/w.bin", tmp_path / "w.bin", None).read_bytes() == PAYLOAD


def test_a_digest_mismatch_removes_the_download(tmp_path: Path, server: _Server) -> None:
    server.files["/w.bin"] = PAYLOAD
    wrong = "sha256:" + "0" * 64
    with pytest.raises(InvalidWeightsError, match="does not match the published digest"):
        download(f"{server.url}/w.bin", tmp_path / "w.bin", wrong)
    assert list(tmp_path.iterdir()) == []


def test_a_sha256_prefix_is_checked_like_openmmlab_names_pin_it(
    tmp_path: Path, server: _Server
) -> None:
    server.files["/w.bin"] = PAYLOAD
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    assert download(f"{server.url}/w.bin", tmp_path / "w.bin", f"sha256:{sha[:8]}").is_file()
    (tmp_path / "w.bin").unlink()
    wrong = "sha256:" + ("0" if sha[0] != "0" else "1") + sha[1:8]
    with pytest.raises(InvalidWeightsError, match=f"does not match.*its sha256 is {sha}"):
        download(f"{server.url}/w.bin", tmp_path / "w.bin", wrong)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ParameterError, match="'sha256:xyz' is not sha256:HEX"):
        download(f"{server.url}/w.bin", tmp_path / "w.bin", "sha256:xyz")


def test_offline_is_said_at_once(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/w.bin"
    with pytest.raises(DownloadError, match="cannot reach"):
        download(url, tmp_path / "w.bin", None)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "home"
    monkeypatch.setenv("INPAINT_HOME", str(folder))
    return folder


def _entry_at(monkeypatch: pytest.MonkeyPatch, url: str, digest: str | None):
    entry = dataclasses.replace(get_entry("big-lama"), url=url, digest=digest)
    others = tuple(e for e in catalogue() if e.name != "big-lama")
    monkeypatch.setattr(catalogue_module, "CATALOGUE", (entry, *others))
    return entry


def test_cli_fetch_offline_gives_the_url_and_the_import_command(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/big-lama.zip"
    _entry_at(monkeypatch, url, None)
    assert main(["weights", "fetch", "big-lama"]) == 2
    out, err = capsys.readouterr()
    assert "licence: Apache-2.0" in out
    assert "no digest is pinned" in out
    assert url in err
    assert "inpaint weights import lama" in err
    assert str(installed_path("big-lama")) in err


def test_cli_fetch_digest_mismatch_exits_2_and_removes_the_file(
    home: Path, server: _Server, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server.files["/big-lama.zip"] = PAYLOAD
    _entry_at(monkeypatch, f"{server.url}/big-lama.zip", "md5:" + "1" * 32)
    assert main(["weights", "fetch", "big-lama"]) == 2
    out, err = capsys.readouterr()
    assert out.index("licence:") < out.index("from:")
    assert "does not match the published digest md5:1111" in err
    assert not any(p.is_file() for p in (home / "downloads").iterdir())


def test_cli_list_json_names_every_entry(home: Path, capsys: pytest.CaptureFixture[str]):
    import json

    assert main(["weights", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by_name = {row["name"]: row for row in rows}
    assert {"big-lama", "edgeconnect-places2"} <= set(by_name)
    for row in rows:
        assert row["url"].startswith("https://")
        assert row["licence"] and row["training_data"] and row["format"]
        assert row["installed"] is False
        assert row["path"].startswith(str(home))
    assert by_name["edgeconnect-celeba"]["licence"].startswith("CC BY-NC 4.0")
    # Every survey family with a published checkpoint, each pinned or said unpinned.
    methods = {row["method"] for row in rows}
    assert {"glcic", "partial-conv-unet", "deepfill-v2", "mi-gan", "context-encoder"} <= methods
    for name in ("glcic-places", "partial-conv-places", "deepfill-v2-places"):
        assert re.fullmatch(r"sha256:[0-9a-f]{8}", by_name[name]["digest"])
        assert by_name[name]["url"].endswith(by_name[name]["digest"][7:] + ".pth")
    assert by_name["mi-gan-places2-512-iopaint"]["digest"].startswith("md5:")
    assert main(["weights", "list"]) == 0
    table = capsys.readouterr().out
    assert "big-lama" in table
    assert "pix2pix: no published pix2pix checkpoint is trained for inpainting" in table


def test_weights_names_resolve_or_say_how_to_get_them(home: Path) -> None:
    with pytest.raises(MissingWeightsError, match="inpaint weights fetch big-lama"):
        resolve_weights("big-lama", "lama")
    with pytest.raises(ParameterError, match="for method 'lama', not 'edge-gan'"):
        resolve_weights("big-lama", "edge-gan")
    installed = installed_path("big-lama")
    installed.parent.mkdir(parents=True)
    installed.write_bytes(b"")
    assert resolve_weights("big-lama", "lama") == installed
    assert resolve_weights("runs/w.safetensors", "lama") == Path("runs/w.safetensors")
    for published in ("best.ckpt", "EdgeModel_gen.pth", "big-lama.pt"):
        with pytest.raises(ParameterError, match="inpaint weights import"):
            resolve_weights(published, "lama")


def test_cli_run_with_a_pth_file_answers_with_the_import_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import numpy as np

    from inpaint_core.io import write_image

    image, mask = tmp_path / "i.png", tmp_path / "m.png"
    write_image(image, np.zeros((32, 32, 3), np.uint8))
    write_image(mask, np.pad(np.ones((8, 8), np.uint8) * 255, 12))
    checkpoint = tmp_path / "EdgeModel_gen.pth"
    checkpoint.write_bytes(b"not read")
    code = main(["run", str(image), str(mask), "-m", "edge-gan", "--weights", str(checkpoint),
                 "-o", str(tmp_path / "o.png")])
    assert code == 2
    err = capsys.readouterr().err
    assert "inpaint weights import edge-connect" in err
    assert "does not exist" not in err
