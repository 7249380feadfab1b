"""Format lama-torchscript: IOPaint's one-file big-lama.pt, read without running its code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch
from torch import nn

from inpaint_core.errors import InvalidWeightsError
from inpaint_core.nn.layers.ffc import FfcResNetGenerator, LamaConfig
from inpaint_core.weights import get_format, import_weights

from ..reference import forbid_torchscript_loading, import_published, run_method

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "lama"


class _IOPaintLike(nn.Module):
    """A wrapper like the one IOPaint traced: (image, mask) in, the composite out."""

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        predicted = self.generator(torch.cat([image * (1 - mask), mask], dim=1))
        return mask * predicted + (1 - mask) * image


def _traced(folder: Path, out: Path) -> Path:
    converted = get_format("lama").convert(folder)
    generator = FfcResNetGenerator(LamaConfig(**converted.config))
    generator.load_state_dict(converted.networks["generator"])
    example = (torch.rand(1, 3, 64, 64), (torch.rand(1, 1, 64, 64) > 0.7).float())
    torch.jit.save(torch.jit.trace(_IOPaintLike(generator.eval()), example), out)
    return out


@pytest.mark.parametrize("variant", ["ffc", "lfu"])
def test_torchscript_gives_the_same_weights_as_the_published_folder(
    tmp_path: Path, variant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = _traced(FIXTURES / variant, tmp_path / "big-lama.pt")
    forbid_torchscript_loading(monkeypatch)
    from_folder = import_weights("lama", FIXTURES / variant, tmp_path / "folder.safetensors")
    from_script = import_weights("lama-torchscript", archive, tmp_path / "script.safetensors")
    expected = safetensors.torch.load_file(from_folder)
    got = safetensors.torch.load_file(from_script)
    assert list(got) == list(expected)
    assert all(torch.equal(got[key], expected[key]) for key in expected)


def test_torchscript_weights_restore_like_the_folder(tmp_path: Path) -> None:
    archive = _traced(FIXTURES / "ffc", tmp_path / "big-lama.pt")
    images = FIXTURES / "images"
    outputs = []
    for name, source in (("lama", FIXTURES / "ffc"), ("lama-torchscript", archive)):
        weights = import_published(name, source, tmp_path / f"{name}.safetensors")
        outputs.append(run_method(images / "scene.png", images / "scene_mask.png", "lama",
                                  weights, tmp_path / f"{name}.png"))
    assert np.array_equal(outputs[0], outputs[1])


def test_a_plain_checkpoint_is_not_taken_for_torchscript(tmp_path: Path) -> None:
    plain = tmp_path / "big-lama.pt"
    torch.save({"state_dict": {"generator.model.1.ffc.convl2l.weight": torch.zeros(1)}}, plain)
    with pytest.raises(InvalidWeightsError, match="not a TorchScript module archive"):
        get_format("lama-torchscript").convert(plain)


def test_a_torchscript_file_of_another_network_names_what_is_missing(tmp_path: Path) -> None:
    other = tmp_path / "other.pt"
    torch.jit.save(torch.jit.trace(nn.Conv2d(3, 4, 3), torch.zeros(1, 3, 8, 8)), other)
    with pytest.raises(InvalidWeightsError, match="no LaMa generator"):
        get_format("lama-torchscript").convert(other)
