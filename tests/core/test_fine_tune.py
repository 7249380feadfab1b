"""The one fine-tune recipe (inpaint_core.training.fine_tune): a generator of per-step progress
over the Trainer, used by ``inpaint train``, the napari fit and benchmarks/fit_to_scan.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from inpaint_core.checkpoint import load_checkpoint, read_checkpoint_info
from inpaint_core.errors import MissingWeightsError, ParameterError
from inpaint_core.training.datasets import ScanPatchDataset
from inpaint_core.training.fine_tune import current_weights, fine_tune
from inpaint_core.training.trainer import TrainConfig, TrainProgress, follow
from inpaint_methods.edge_gan import EdgeGan

TINY = {key: str(value) for key, value in EdgeGan.smoke_test_options.items()}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def scan(size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """A uint8 ``(size, size, 3)`` picture and its damage: a block in the top-left quarter."""
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64) / (size - 1)
    image = np.stack([rows, cols, 0.5 + 0.4 * np.sin(9 * cols)], axis=2)
    damage = np.zeros((size, size), dtype=bool)
    damage[4:20, 6:26] = True
    return np.rint(image * 255).astype(np.uint8), damage


def patches(seed: int = 0) -> ScanPatchDataset:
    image, damage = scan()
    return ScanPatchDataset(image, damage, size=32, samples=4, seed=seed)


def settings(steps: int, **kwargs: object) -> TrainConfig:
    values: dict[str, object] = {"batch_size": 2, "device": "cpu", "checkpoint_every": steps}
    values.update(kwargs)
    return TrainConfig(steps=steps, **values)  # type: ignore[arg-type]


def test_yields_every_step_and_returns_the_result(tmp_path: Path) -> None:
    run = fine_tune("edge-gan", patches(), tmp_path / "run", settings(3), options=TINY)
    updates: list[TrainProgress] = []
    while True:
        try:
            updates.append(next(run))
        except StopIteration as finished:
            result = finished.value
            break
    assert [(u.step, u.steps) for u in updates] == [(1, 3), (2, 3), (3, 3)]
    assert all(isinstance(u, TrainProgress) and "g2_l1" in u.losses for u in updates)
    assert [u.wall_seconds for u in updates] == sorted(u.wall_seconds for u in updates)
    assert result.step == 3 and not result.stopped and result.losses == updates[-1].losses
    info = read_checkpoint_info(result.weights)
    assert info.method == "edge-gan" and info.step == 3
    assert info.config["base_channels"] == 4  # the options


def test_fine_tunes_from_weights_with_their_config(tmp_path: Path) -> None:
    first = follow(fine_tune("edge-gan", patches(), tmp_path / "a", settings(1), options=TINY))
    start = load_checkpoint(first.weights)[0]
    data = {"kind": "test"}
    stops = iter([False, True])
    run = fine_tune(
        "edge-gan",
        patches(1),
        tmp_path / "b",
        settings(5),
        init=first.weights,
        training_data=data,
        should_stop=lambda: next(stops),
    )
    result = follow(run)
    assert result.stopped and result.step == 2  # polled after each step
    info = read_checkpoint_info(result.weights)
    # No options: the architecture is the init weights' own (a default config would not fit).
    assert info.config == read_checkpoint_info(first.weights).config
    assert info.training_data == data
    tuned = load_checkpoint(result.weights)[0]
    # Two Adam steps move a parameter by about 2 lr: the run started from the init weights.
    # (Spectral norm's power-iteration vectors _u, _v are buffers, not parameters.)
    parameters = [key for key in start if not key.endswith(("._u", "._v"))]
    assert any(not torch.equal(start[key], tuned[key]) for key in parameters)
    assert all(torch.allclose(start[key], tuned[key], atol=0.01) for key in parameters)


def test_the_same_seed_gives_the_same_weights(tmp_path: Path) -> None:
    weights = []
    for global_seed in (1, 2):  # whatever ran before in the process
        torch.manual_seed(global_seed)
        out = tmp_path / str(global_seed)
        run = fine_tune("edge-gan", patches(), out, settings(1, seed=3), options=TINY)
        weights.append(load_checkpoint(follow(run).weights)[0])
    assert all(torch.equal(weights[0][key], weights[1][key]) for key in weights[0])


def test_resume_continues_into_the_resumed_folder(tmp_path: Path) -> None:
    first = follow(fine_tune("edge-gan", patches(), tmp_path / "run", settings(2), options=TINY))
    result = follow(fine_tune("edge-gan", patches(), None, settings(3), resume=tmp_path / "run"))
    assert result.step == 3 and result.checkpoint.parent.parent == tmp_path / "run"
    assert result.weights == first.weights


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match=r"method 'telea' is not learned; learned methods: "):
        next(fine_tune("telea", patches(), tmp_path / "t", settings(1)))
    with pytest.raises(ParameterError, match=r"--option cannot change a resumed run's settings"):
        next(fine_tune("edge-gan", patches(), None, settings(1), resume="x", options=TINY))
    with pytest.raises(ParameterError, match=r"a run folder is needed: give out, or resume"):
        next(fine_tune("edge-gan", patches(), None, settings(1), options=TINY))
    with pytest.raises(ParameterError, match=r"unknown option 'depth' for EdgeGanConfig"):
        next(fine_tune("edge-gan", patches(), tmp_path / "d", settings(1), options={"depth": "3"}))
    assert not (tmp_path / "t").exists() and not (tmp_path / "d").exists()


def test_current_weights(tmp_path: Path) -> None:
    assert current_weights("edge-gan") == EdgeGan.default_weights()
    assert current_weights("edge-gan").is_file()
    with pytest.raises(ParameterError, match=r"method 'telea' is not learned"):
        current_weights("telea")
    missing = tmp_path / "none.safetensors"
    with pytest.raises(MissingWeightsError, match=r"weights file .*none.safetensors given"):
        current_weights("edge-gan", {"weights": missing})
