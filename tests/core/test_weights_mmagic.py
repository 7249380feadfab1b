"""Reading OpenMMLab checkpoints: ``state_dict`` + ``meta``, with the restricted loader."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from inpaint_core.errors import InvalidWeightsError
from inpaint_core.weights.mmagic import network_state, read_checkpoint, source_of


def _save(path: Path, payload: object) -> Path:
    torch.save(payload, path)
    return path


def test_state_and_meta_come_back_and_a_prefix_is_cut(tmp_path: Path) -> None:
    state = OrderedDict(
        [("generator.conv.weight", torch.randn(2, 3, 3, 3)), ("disc.fc.bias", torch.zeros(1))]
    )
    # numpy scalars in meta make the file more than tensors: the restricted reader takes it.
    meta = {"iter": 500000, "mmedit_version": "0.4.0", "score": np.float64(0.5)}
    path = _save(tmp_path / "gl.pth", {"meta": meta, "state_dict": state})
    read, got = read_checkpoint(path)
    assert list(read) == list(state)
    assert torch.equal(read["generator.conv.weight"], state["generator.conv.weight"])
    assert got["iter"] == 500000
    assert list(network_state(read, "generator.", path)) == ["conv.weight"]
    assert source_of(got, path, "mmagic-glcic") == {
        "format": "mmagic-glcic", "files": ["gl.pth"], "iter": 500000, "mmedit_version": "0.4.0"
    }


def test_what_is_not_an_openmmlab_checkpoint_is_named(tmp_path: Path) -> None:
    bare = _save(tmp_path / "bare.pth", {"conv.weight": torch.zeros(1)})
    with pytest.raises(InvalidWeightsError, match=r"expected a dict with 'state_dict'.*conv"):
        read_checkpoint(bare)
    odd = _save(tmp_path / "odd.pth", {"state_dict": {"a": 1}, "meta": {}})
    with pytest.raises(InvalidWeightsError, match="'state_dict' is not a dict of tensors"):
        read_checkpoint(odd)
    state = {"generator.w": torch.zeros(1)}
    with pytest.raises(InvalidWeightsError, match=r"no 'disc\.' tensors; .* generator\."):
        network_state(state, "disc.", "x.pth")
