"""Resuming a training run: same weights and optimiser state, and the refusals."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch import Tensor

from inpaint_core.errors import (
    InvalidWeightsError,
    MissingWeightsError,
    OutputExistsError,
    ParameterError,
)
from inpaint_core.training.trainer import read_run_info, train
from inpaint_methods.edge_gan import EdgeGanConfig, EdgeGanTraining

from .trainer_helpers import TINY_EDGE_GAN, EpochImages, read_log, settings, tensors_of, tiny

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def assert_same_tensors(first: dict[str, Tensor], second: dict[str, Tensor]) -> None:
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key


# --- resume ------------------------------------------------------------------------------
def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path: Path) -> None:
    # One batch per epoch (items == batch size), so "resume starts a new epoch" loses no
    # data: the resumed run sees exactly the batches, RNG draws and Adam states of the
    # uninterrupted one.
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(tiny(), EpochImages(), straight, settings(6, checkpoint_every=100))
    first = train(tiny(), EpochImages(), split, settings(2, checkpoint_every=100))
    assert first.step == 2
    resumed = train(tiny(seed=123), EpochImages(), split, settings(6), resume=split)
    assert resumed.step == 6
    straight_last = straight / "checkpoints" / "step-00000006.safetensors"
    assert_same_tensors(tensors_of(resumed.checkpoint), tensors_of(straight_last))
    assert_same_tensors(tensors_of(split / "tiny-fill.safetensors"),
                        tensors_of(straight / "tiny-fill.safetensors"))
    # Both halves of the log together are the uninterrupted log.
    metrics = ("epoch", "critic", "gen", "l1")
    assert [[row[key] for key in metrics] for row in read_log(split)] == [
        [row[key] for key in metrics] for row in read_log(straight)
    ]
    assert read_run_info(split).wall_seconds >= read_run_info(
        split / "checkpoints" / "step-00000002.safetensors").wall_seconds


def test_resume_restores_the_optimiser_state(tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(tiny(), EpochImages(), out, settings(2))
    saved = torch.load(out / "checkpoints" / "step-00000002.state.pt", weights_only=True)
    captured: dict[str, object] = {}
    original = torch.optim.Adam.load_state_dict

    def spy(self: torch.optim.Adam, state: dict) -> None:
        original(self, state)
        captured[str(len(captured))] = copy.deepcopy(self.state_dict())  # later steps mutate it

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.optim.Adam, "load_state_dict", spy)
        train(tiny(seed=5), EpochImages(), out, settings(3), resume=out)
    assert len(captured) == 2
    for loaded, name in zip(captured.values(), ("critic", "generator"), strict=True):
        expected = saved["optimizers"][name]
        assert loaded["param_groups"] == expected["param_groups"]
        for index, state in expected["state"].items():
            assert float(loaded["state"][index]["step"]) == 2.0
            assert torch.equal(loaded["state"][index]["exp_avg"], state["exp_avg"])


def test_resume_from_an_older_checkpoint_truncates_the_log(tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(tiny(), EpochImages(), out, settings(5, checkpoint_every=2))
    before = read_log(out)
    assert [int(row["step"]) for row in before] == [1, 2, 3, 4, 5]
    train(tiny(), EpochImages(), out, settings(3),
          resume=out / "checkpoints" / "step-00000002.safetensors")
    after = read_log(out)
    assert [int(row["step"]) for row in after] == [1, 2, 3]  # rows 3-5 dropped, 3 rewritten
    assert after[:2] == before[:2]
    assert after[2]["l1"] == before[2]["l1"]  # deterministic: the same step 3


def test_resume_mid_epoch_starts_the_next_epoch(tmp_path: Path) -> None:
    # Two batches per epoch: a checkpoint after step 3 is mid-epoch 1; the resumed run does
    # not finish epoch 1 but starts epoch 2 (documented: "resume starts a new epoch").
    out = tmp_path / "run"
    train(tiny(), EpochImages(items=4), out, settings(3))
    assert [int(row["epoch"]) for row in read_log(out)] == [0, 0, 1]
    train(tiny(), EpochImages(items=4), out, settings(5), resume=out)
    assert [int(row["epoch"]) for row in read_log(out)] == [0, 0, 1, 2, 2]


def test_second_run_into_a_used_folder_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(tiny(), EpochImages(), out, settings(1))
    with pytest.raises(OutputExistsError, match=rf"--resume {out}"):
        train(tiny(), EpochImages(), out, settings(2))


def test_resume_at_or_past_the_target_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(tiny(), EpochImages(), out, settings(2))
    for steps in (2, 1):
        with pytest.raises(ParameterError, match=r"at step 2 already; ask for --steps > 2"):
            train(tiny(), EpochImages(), out, settings(steps), resume=out)


def test_resume_with_another_config_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(tiny(), EpochImages(), out, settings(1))
    with pytest.raises(InvalidWeightsError, match=r"config \{'tag': 'a'.*not \{'tag': 'b'"):
        train(tiny(tag="b"), EpochImages(), out, settings(2), resume=out)


def test_resume_without_optimiser_state_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(tiny(), EpochImages(), out, settings(1))
    (out / "checkpoints" / "step-00000001.state.pt").unlink()
    with pytest.raises(MissingWeightsError, match=r"no optimiser state step-00000001.state.pt"):
        train(tiny(), EpochImages(), out, settings(2), resume=out)


def test_resume_of_another_method_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(tiny(), EpochImages(), out, settings(1))
    other = EdgeGanTraining(EdgeGanConfig(**TINY_EDGE_GAN))  # type: ignore[arg-type]
    with pytest.raises(InvalidWeightsError, match=r"for method 'tiny-fill', not 'edge-gan'"):
        train(other, EpochImages(size=32), out, settings(2), resume=out)
