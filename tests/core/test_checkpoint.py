"""Checkpoint I/O: safetensors + JSON sidecar, hashes, half precision, atomic writes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import safetensors.torch
import torch
from torch import nn

from inpaint_core.checkpoint import (
    CheckpointInfo,
    checkpoint_paths,
    flatten_state,
    load_checkpoint,
    save_checkpoint,
    sha256_file,
    unflatten_state,
)
from inpaint_core.errors import InvalidWeightsError, MissingWeightsError, OutputExistsError

CONFIG = {"channels": 8, "blocks": 2}


class TinyGenerator(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3, padding=1)
        self.norm = nn.BatchNorm2d(8)  # has integer buffer num_batches_tracked
        self.out = nn.Conv2d(8, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.out(torch.relu(self.norm(self.conv(x)))))


class TinyDiscriminator(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=2)
        self.fc = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).mean(dim=(2, 3)))


def _networks(seed: int) -> dict[str, nn.Module]:
    torch.manual_seed(seed)
    networks = {"generator": TinyGenerator(), "discriminator": TinyDiscriminator()}
    # Non-default running stats, so the buffers are really round-tripped.
    networks["generator"].train()(torch.rand(2, 4, 8, 8))
    return {name: net.eval() for name, net in networks.items()}


def _save(path: Path, networks: dict[str, nn.Module], **kwargs: object) -> CheckpointInfo:
    state = flatten_state({name: net.state_dict() for name, net in networks.items()})
    return save_checkpoint(
        path,
        state,
        method="glcic",
        config=CONFIG,
        step=1200,
        training_data={"source": "scans/mural_01.tif", "tile": 256, "masks": "random strokes"},
        losses={"l1": 0.125, "adversarial": 0.5},
        wall_seconds=12.5,
        extra={"note": "test"},
        **kwargs,  # type: ignore[arg-type]
    )


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_round_trip_two_networks_gives_identical_tensors_and_outputs(tmp_path: Path) -> None:
    saved = _networks(seed=0)
    info = _save(tmp_path / "ckpt", saved)
    tensors, loaded_info = load_checkpoint(tmp_path / "ckpt.safetensors", expected_method="glcic")
    assert loaded_info == info

    states = unflatten_state(tensors)
    assert set(states) == {"generator", "discriminator"}
    fresh = _networks(seed=1)
    for name, net in fresh.items():
        original = saved[name].state_dict()
        assert set(states[name]) == set(original)
        for key, value in original.items():
            assert states[name][key].dtype == value.dtype
            assert torch.equal(states[name][key], value), key
        net.load_state_dict(states[name])

    x = torch.rand(1, 4, 16, 16)
    with torch.no_grad():
        image = saved["generator"](x)
        assert torch.equal(fresh["generator"](x), image)
        assert torch.equal(fresh["discriminator"](image), saved["discriminator"](image))
    assert _leftovers(tmp_path) == []


def test_flatten_unflatten_are_inverse_and_check_names() -> None:
    a, b = torch.zeros(2), torch.ones(3)
    flat = flatten_state({"generator": {"conv.weight": a}, "disc": {"fc.bias": b}})
    assert list(flat) == ["generator.conv.weight", "disc.fc.bias"]
    assert unflatten_state(flat) == {"generator": {"conv.weight": a}, "disc": {"fc.bias": b}}
    with pytest.raises(ValueError, match=r"without '\.'"):
        flatten_state({"gen.a": {"w": a}})
    with pytest.raises(InvalidWeightsError, match="'weight'"):
        unflatten_state({"weight": a})


def test_accepts_stem_weights_and_sidecar_paths(tmp_path: Path) -> None:
    assert checkpoint_paths(tmp_path / "m.v1") == (
        tmp_path / "m.v1.safetensors",
        tmp_path / "m.v1.json",
    )
    _save(tmp_path / "model.json", _networks(0))
    assert (tmp_path / "model.safetensors").is_file() and (tmp_path / "model.json").is_file()
    for given in ("model", "model.safetensors", "model.json"):
        tensors, info = load_checkpoint(tmp_path / given)
        assert info.method == "glcic" and tensors


def test_half_halves_size_and_loads_back_as_float32(tmp_path: Path) -> None:
    torch.manual_seed(0)
    state = {"net.weight": torch.randn(256, 256), "net.steps": torch.tensor([7])}
    full = save_checkpoint(tmp_path / "full", state, method="unet", config={}, step=1)
    half = save_checkpoint(tmp_path / "half", state, method="unet", config={}, step=1, half=True)
    assert (full.dtype, half.dtype) == ("float32", "float16")
    full_size = (tmp_path / "full.safetensors").stat().st_size
    half_size = (tmp_path / "half.safetensors").stat().st_size
    assert 0.45 < half_size / full_size < 0.55

    stored = safetensors.torch.load_file(str(tmp_path / "half.safetensors"))
    assert stored["net.weight"].dtype == torch.float16
    tensors, info = load_checkpoint(tmp_path / "half")
    assert info.dtype == "float16"
    assert tensors["net.weight"].dtype == torch.float32
    torch.testing.assert_close(tensors["net.weight"], state["net.weight"], atol=1e-3, rtol=1e-3)
    assert tensors["net.steps"].dtype == torch.int64 and tensors["net.steps"].item() == 7


def test_half_refuses_values_beyond_float16_range(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="float16 range"):
        save_checkpoint(
            tmp_path / "big", {"w": torch.tensor([1e6])}, method="m", config={}, step=0, half=True
        )
    assert list(tmp_path.iterdir()) == []


def test_sidecar_fields_present_and_correct(tmp_path: Path) -> None:
    info = _save(tmp_path / "ckpt", _networks(0))
    data = json.loads((tmp_path / "ckpt.json").read_text(encoding="utf-8"))
    assert set(data) == {
        "method", "config", "step", "created", "software_version", "training_data", "losses",
        "hardware", "wall_seconds", "sha256", "dtype", "extra",
    }
    assert data["method"] == "glcic"
    assert data["config"] == CONFIG
    assert data["step"] == 1200
    assert data["training_data"]["source"] == "scans/mural_01.tif"
    assert data["losses"] == {"l1": 0.125, "adversarial": 0.5}
    assert data["hardware"]["torch"] == torch.__version__
    assert data["hardware"]["device"] == "cpu"
    assert data["wall_seconds"] == 12.5
    assert data["dtype"] == "float32"
    assert data["extra"] == {"note": "test"}
    assert data["software_version"]
    assert data["created"].endswith("+00:00")
    assert CheckpointInfo.from_json(info.to_json()) == info


def test_sha256_matches_hashlib(tmp_path: Path) -> None:
    info = _save(tmp_path / "ckpt", _networks(0))
    raw = (tmp_path / "ckpt.safetensors").read_bytes()
    assert info.sha256 == hashlib.sha256(raw).hexdigest()
    assert sha256_file(tmp_path / "ckpt.safetensors") == info.sha256
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * (3 * 1024 * 1024 + 5))  # spans several read chunks
    assert sha256_file(big) == hashlib.sha256(big.read_bytes()).hexdigest()


def test_tampered_weights_raise_with_both_hashes_unless_verify_false(tmp_path: Path) -> None:
    info = _save(tmp_path / "ckpt", _networks(0))
    weights = tmp_path / "ckpt.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[-1] ^= 0xFF  # last byte lies in the tensor data, so the file still parses
    weights.write_bytes(bytes(raw))
    found = hashlib.sha256(bytes(raw)).hexdigest()
    with pytest.raises(InvalidWeightsError) as caught:
        load_checkpoint(weights)
    assert info.sha256 in str(caught.value) and found in str(caught.value)
    tensors, _ = load_checkpoint(weights, verify=False)
    assert "generator.conv.weight" in tensors


def test_method_mismatch(tmp_path: Path) -> None:
    _save(tmp_path / "ckpt", _networks(0))
    with pytest.raises(InvalidWeightsError, match="is for method 'glcic', not 'edge-gan'"):
        load_checkpoint(tmp_path / "ckpt", expected_method="edge-gan")


def test_missing_weights_and_missing_sidecar(tmp_path: Path) -> None:
    with pytest.raises(MissingWeightsError, match=r"nothing\.safetensors"):
        load_checkpoint(tmp_path / "nothing")
    _save(tmp_path / "ckpt", _networks(0))
    (tmp_path / "ckpt.json").unlink()
    with pytest.raises(InvalidWeightsError, match=r"ckpt\.json is needed"):
        load_checkpoint(tmp_path / "ckpt.safetensors")


def test_bad_sidecar_is_invalid_weights(tmp_path: Path) -> None:
    _save(tmp_path / "ckpt", _networks(0))
    (tmp_path / "ckpt.json").write_text('{"method": "glcic"}', encoding="utf-8")
    with pytest.raises(InvalidWeightsError, match="lacks the fields"):
        load_checkpoint(tmp_path / "ckpt")
    (tmp_path / "ckpt.json").write_text("not json", encoding="utf-8")
    with pytest.raises(InvalidWeightsError, match="not valid JSON"):
        load_checkpoint(tmp_path / "ckpt")


def test_refuses_overwrite_unless_asked(tmp_path: Path) -> None:
    first = _save(tmp_path / "ckpt", _networks(0))
    with pytest.raises(OutputExistsError, match="overwrite=True") as caught:
        _save(tmp_path / "ckpt", _networks(1))
    assert isinstance(caught.value, OSError)
    assert load_checkpoint(tmp_path / "ckpt")[1].sha256 == first.sha256

    second = _save(tmp_path / "ckpt", _networks(1), overwrite=True)
    assert second.sha256 != first.sha256
    tensors, info = load_checkpoint(tmp_path / "ckpt")
    assert info == second
    expected = _networks(1)["generator"].state_dict()["conv.weight"]
    assert torch.equal(tensors["generator.conv.weight"], expected)
    assert _leftovers(tmp_path) == []


def test_failed_save_leaves_no_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_save_file(tensors: object, filename: str, metadata: object = None) -> None:
        Path(filename).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", broken_save_file)
    with pytest.raises(OSError, match="disk full"):
        _save(tmp_path / "ckpt", _networks(0))
    assert list(tmp_path.iterdir()) == []


def test_failed_sidecar_write_keeps_old_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _save(tmp_path / "ckpt", _networks(0))

    def broken_write_text(self: Path, *args: object, **kwargs: object) -> int:
        raise OSError("no space left")

    monkeypatch.setattr(Path, "write_text", broken_write_text)
    with pytest.raises(OSError, match="no space left"):
        _save(tmp_path / "ckpt", _networks(1), overwrite=True)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.json", "ckpt.safetensors"]
    assert load_checkpoint(tmp_path / "ckpt")[1] == first


def test_non_json_metadata_and_non_tensor_entries_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not JSON-ready"):
        save_checkpoint(
            tmp_path / "a", {"w": torch.zeros(1)}, method="m", config={"x": {1, 2}}, step=0
        )
    with pytest.raises(ValueError, match="flat dict of str -> Tensor"):
        not_a_tensor: dict = {"w": [1.0]}
        save_checkpoint(tmp_path / "a", not_a_tensor, method="m", config={}, step=0)
    assert list(tmp_path.iterdir()) == []
