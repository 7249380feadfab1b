"""Safe loading of published checkpoints: tensors come back, nothing in the file runs."""

from __future__ import annotations

import pickle
import sys
import types
import zipfile
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from inpaint_core.errors import InvalidWeightsError
from inpaint_core.weights.pickles import Placeholder, load_pickled

from ..reference import assert_payload_runs, touches


def _state() -> OrderedDict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return OrderedDict(
        [
            ("model.0.weight", torch.randn(4, 3, 3, 3, generator=generator)),
            ("model.0.bias", torch.randn(4, generator=generator)),
            ("model.1.running_var", torch.rand(4, generator=generator).double()),
            ("model.1.num_batches_tracked", torch.tensor(7)),
            ("half", torch.randn(2, 5, generator=generator).half()),
        ]
    )


def _fake_module(name: str, **attributes: object) -> types.ModuleType:
    """A module that exists only while a pickle naming it is written."""
    module = types.ModuleType(name)
    for key, value in attributes.items():
        setattr(module, key, value)
        if isinstance(value, type):
            value.__module__ = name
            value.__qualname__ = key
    sys.modules[name] = module
    return module


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_plain_checkpoint_loads_equal_tensors(tmp_path: Path, zip_format: bool) -> None:
    path = tmp_path / "plain.pth"
    state = _state()
    torch.save(
        {"iteration": 3, "generator": state}, path, _use_new_zipfile_serialization=zip_format
    )
    loaded = load_pickled(path)
    assert loaded["iteration"] == 3
    assert list(loaded["generator"]) == list(state)
    for key, tensor in state.items():
        assert loaded["generator"][key].dtype == tensor.dtype
        assert torch.equal(loaded["generator"][key], tensor)


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_payload_that_would_run_a_command_is_inert(tmp_path: Path, zip_format: bool) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "evil.ckpt"
    state = _state()
    payload = {"state_dict": state, "callbacks": touches(marker)}
    torch.save(payload, path, _use_new_zipfile_serialization=zip_format)
    # Loaded freely, the file runs the command: the test's payload is real.
    assert_payload_runs(path, marker)

    loaded = load_pickled(path)
    assert not marker.exists()
    assert torch.equal(loaded["state_dict"]["model.0.weight"], state["model.0.weight"])
    stand_in = loaded["callbacks"]
    assert isinstance(stand_in, Placeholder)
    assert stand_in.global_name in ("posix.system", "os.system", "nt.system")
    assert stand_in.args == (f"touch {marker}",)


def test_named_modules_are_never_imported(tmp_path: Path) -> None:
    """A config object of a library that is not installed: read, never imported."""

    class DictConfig:
        def __init__(self) -> None:
            self.content = {"generator": {"ngf": 8, "ratio": 0.75}}

    name = "inpaint_test_config_library"
    _fake_module(name, DictConfig=DictConfig)
    path = tmp_path / "best.ckpt"
    try:
        torch.save({"state_dict": _state(), "hyper_parameters": DictConfig()}, path)
    finally:
        del sys.modules[name]
    loaded = load_pickled(path)
    assert name not in sys.modules
    config = loaded["hyper_parameters"]
    assert config.global_name == f"{name}.DictConfig"
    assert config.state == {"content": {"generator": {"ngf": 8, "ratio": 0.75}}}
    assert loaded["state_dict"]["model.0.bias"].shape == (4,)


def test_torchscript_archive_tensors_are_read_without_its_code(tmp_path: Path) -> None:
    network = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)).eval()
    path = tmp_path / "traced.pt"
    torch.jit.save(torch.jit.trace(network, torch.zeros(1, 3, 8, 8)), path)
    loaded = load_pickled(path)
    assert isinstance(loaded, Placeholder)
    assert loaded.global_name.startswith("__torch__.")
    conv = loaded.state["0"].state
    assert torch.equal(conv["weight"], network[0].weight.detach())


def test_a_cut_file_is_an_error_that_names_it(tmp_path: Path) -> None:
    path = tmp_path / "cut.pth"
    torch.save({"generator": _state()}, path, _use_new_zipfile_serialization=False)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    with pytest.raises(InvalidWeightsError, match="cut"):
        load_pickled(path)


def test_not_a_checkpoint_and_missing_file(tmp_path: Path) -> None:
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint")
    with pytest.raises(InvalidWeightsError, match=str(text)):
        load_pickled(text)
    with pytest.raises(InvalidWeightsError, match="does not exist"):
        load_pickled(tmp_path / "absent.pth")
    archive = tmp_path / "other.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("readme.txt", "hello")
    with pytest.raises(InvalidWeightsError, match=r"not a torch file|cannot read"):
        load_pickled(archive)


def test_protocol_two_bytes_and_sets_are_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "misc.pth"

    class Unsafe:
        pass

    name = "inpaint_test_unsafe_module"
    _fake_module(name, Unsafe=Unsafe)
    try:
        torch.save(
            {"blob": b"\x00\xffabc", "tags": {1, 2}, "obj": Unsafe(), "w": _state()},
            path,
            pickle_protocol=2,
        )
    finally:
        del sys.modules[name]
    loaded = load_pickled(path)
    assert loaded["blob"] == b"\x00\xffabc"
    assert loaded["tags"] == {1, 2}
    assert isinstance(loaded["obj"], Placeholder)
    with pytest.raises(pickle.PicklingError):
        pickle.dumps(loaded["obj"])  # a placeholder is no importable class: it stays inert
