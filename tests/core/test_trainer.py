"""The shared trainer: logs, checkpoints, inference weights, resume, init, stopping, errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import safetensors.torch
import torch
from torch import nn

from inpaint_core.checkpoint import flatten_state, load_checkpoint, save_checkpoint, sha256_file
from inpaint_core.errors import (
    InvalidInputError,
    InvalidWeightsError,
    MissingWeightsError,
    ParameterError,
)
from inpaint_core.trainable.model import OptimizerSpec
from inpaint_core.training.trainer import TrainConfig, find_latest_checkpoint, read_run_info, train
from inpaint_methods.edge_gan import EdgeGanConfig, EdgeGanTraining

from .trainer_helpers import TINY_EDGE_GAN, EpochImages, read_log, settings, tensors_of, tiny

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def steps_on_disk(out: Path) -> list[str]:
    return sorted(p.name for p in (out / "checkpoints").iterdir())


# --- files a run writes ---------------------------------------------------------------------
def test_run_writes_log_rows_every_log_every_steps(tmp_path: Path) -> None:
    train(tiny(), EpochImages(), tmp_path / "every1", settings(5))
    result = train(tiny(), EpochImages(), tmp_path / "every2", settings(5, log_every=2))
    assert result.step == 5 and not result.stopped
    rows = read_log(tmp_path / "every2")
    assert list(rows[0]) == ["step", "epoch", "wall_seconds", "steps_per_second",
                             "critic", "gen", "l1"]
    assert [int(row["step"]) for row in rows] == [2, 4, 5]  # the last step is always logged
    assert [int(row["epoch"]) for row in rows] == [1, 3, 4]  # one batch per epoch
    every = {int(row["step"]): float(row["l1"]) for row in read_log(tmp_path / "every1")}
    # A row holds the mean of the metrics since the previous row.
    assert float(rows[1]["l1"]) == pytest.approx((every[3] + every[4]) / 2, rel=1e-4)
    assert float(rows[2]["l1"]) == pytest.approx(every[5], rel=1e-4)
    assert all(float(row["wall_seconds"]) >= 0 for row in rows)


def test_checkpoints_and_fp16_inference_weights(tmp_path: Path) -> None:
    out = tmp_path / "run"
    data = {"kind": "test", "items": 2}
    result = train(tiny(), EpochImages(), out, settings(4, checkpoint_every=2),
                   training_data=data)
    assert steps_on_disk(out) == [
        f"step-{step:08d}{suffix}" for step in (2, 4)
        for suffix in (".json", ".safetensors", ".state.pt")
    ]
    assert result.checkpoint == out / "checkpoints" / "step-00000004.safetensors"
    assert result.weights == out / "tiny-fill.safetensors"
    assert set(result.losses) == {"critic", "gen", "l1"}

    full, info = load_checkpoint(result.checkpoint)
    assert {key.split(".")[0] for key in full} == {"generator", "critic"}
    assert info.step == 4 and info.dtype == "float32"
    assert info.extra["train_config"]["steps"] == 4 and info.extra["flavour"] == "tiny"

    raw = safetensors.torch.load_file(str(result.weights))
    assert set(raw) == {"generator.weight", "generator.bias"}  # inference networks only
    assert all(tensor.dtype == torch.float16 for tensor in raw.values())
    sidecar = json.loads((out / "tiny-fill.json").read_text())
    assert sidecar["method"] == "tiny-fill"
    assert sidecar["config"] == {"tag": "a", "lr": 0.01}
    assert sidecar["step"] == 4
    assert sidecar["training_data"] == data
    assert sidecar["hardware"]["device"] == "cpu"
    assert sidecar["dtype"] == "float16"
    assert sidecar["sha256"] == sha256_file(result.weights)
    # The shipped weights are the final checkpoint's generator, rounded to float16.
    assert torch.equal(raw["generator.weight"], full["generator.weight"].half())


def test_keep_checkpoints_prunes_the_oldest(tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(tiny(), EpochImages(), out, settings(6, checkpoint_every=1, keep_checkpoints=2))
    assert steps_on_disk(out) == [
        f"step-{step:08d}{suffix}" for step in (5, 6)
        for suffix in (".json", ".safetensors", ".state.pt")
    ]


def test_find_latest_checkpoint_and_read_info(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with pytest.raises(MissingWeightsError, match="holds no checkpoint"):
        find_latest_checkpoint(tmp_path)
    with pytest.raises(MissingWeightsError, match=r"nope\.safetensors' does not exist; pass a run"):
        find_latest_checkpoint(tmp_path / "nope.safetensors")
    with pytest.raises(MissingWeightsError, match=r"run-2' does not exist; pass a run folder"):
        find_latest_checkpoint(tmp_path / "run-2")
    train(tiny(), EpochImages(), out, settings(3, checkpoint_every=2))
    newest = out / "checkpoints" / "step-00000003.safetensors"
    assert find_latest_checkpoint(out) == newest
    older = out / "checkpoints" / "step-00000002.json"
    assert find_latest_checkpoint(older) == older.with_suffix(".safetensors")
    assert read_run_info(out).step == 3
    assert read_run_info(older).step == 2


# --- stopping, init, failures --------------------------------------------------------------
def test_should_stop_saves_a_checkpoint_and_returns(tmp_path: Path) -> None:
    out = tmp_path / "run"
    seen: list[int] = []

    def progress(step: int, steps: int, losses: dict[str, float]) -> None:
        seen.append(step)
        assert steps == 10 and set(losses) == {"critic", "gen", "l1"}

    result = train(tiny(), EpochImages(), out, settings(10, checkpoint_every=100),
                   progress=progress, should_stop=lambda: len(seen) >= 3)
    assert result.stopped and result.step == 3 and seen == [1, 2, 3]
    assert result.checkpoint == out / "checkpoints" / "step-00000003.safetensors"
    assert read_run_info(out / "tiny-fill.safetensors").step == 3
    # And the stopped run can be resumed.
    assert train(tiny(), EpochImages(), out, settings(4), resume=out).step == 4


def test_init_starts_from_the_given_weights(tmp_path: Path) -> None:
    first = train(tiny(seed=0), EpochImages(), tmp_path / "first", settings(3))
    start = tensors_of(first.weights)["generator.weight"]
    fresh = tiny(seed=99)
    assert (fresh.generator.weight.detach() - start).abs().max() > 0.05
    # One Adam step moves a weight by at most about lr, so the result stays near the init.
    train(fresh, EpochImages(), tmp_path / "second", settings(1), init=first.weights)
    assert torch.allclose(fresh.generator.weight.detach(), start, atol=1e-2 + 1e-3)
    assert not torch.equal(fresh.generator.weight.detach(), start)  # and it trained


def test_init_with_bad_weights_is_refused(tmp_path: Path) -> None:
    state = flatten_state({"generator": nn.Conv2d(4, 3, 3, padding=1).state_dict()})
    save_checkpoint(tmp_path / "other", state, method="other", config={}, step=1)
    with pytest.raises(InvalidWeightsError, match=r"for method 'other', not 'tiny-fill'"):
        train(tiny(), EpochImages(), tmp_path / "a", settings(1), init=tmp_path / "other")
    state = flatten_state({"refiner": nn.Conv2d(4, 3, 3, padding=1).state_dict()})
    save_checkpoint(tmp_path / "extra", state, method="tiny-fill", config={}, step=1)
    with pytest.raises(InvalidWeightsError, match=r"holds network 'refiner', which the model"):
        train(tiny(), EpochImages(), tmp_path / "b", settings(1), init=tmp_path / "extra")
    state = flatten_state({"generator": nn.Conv2d(4, 5, 3, padding=1).state_dict()})
    save_checkpoint(tmp_path / "shape", state, method="tiny-fill", config={}, step=1)
    with pytest.raises(InvalidWeightsError, match=r"network 'generator' does not fit"):
        train(tiny(), EpochImages(), tmp_path / "c", settings(1), init=tmp_path / "shape")


def test_nan_loss_raises_naming_the_loss_and_the_step(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with pytest.raises(FloatingPointError, match=r"loss gen became nan at step 3.*step-00000002"):
        train(tiny(nan_from=3), EpochImages(), out, settings(5, checkpoint_every=2))
    # Nothing past the last good step is saved: the run can resume from step 2.
    assert read_run_info(out).step == 2
    assert read_run_info(out / "tiny-fill.safetensors").step == 2


def test_ctrl_c_saves_a_checkpoint_and_re_raises(tmp_path: Path) -> None:
    out = tmp_path / "run"

    def progress(step: int, steps: int, losses: dict[str, float]) -> None:
        if step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(tiny(), EpochImages(), out, settings(10, checkpoint_every=100), progress=progress)
    assert read_run_info(out).step == 2
    assert (out / "checkpoints" / "step-00000002.state.pt").is_file()


def test_too_little_data_for_one_batch(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"has 2 items, fewer than one batch of 4"):
        train(tiny(), EpochImages(items=2), tmp_path / "run", settings(1, batch_size=4))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"steps": 0}, r"steps=0 must be an integer >= 1"),
        ({"batch_size": True}, r"batch_size=True must be an integer >= 1"),
        ({"log_every": 1.5}, r"log_every=1.5 must be an integer >= 1"),
        ({"checkpoint_every": -2}, r"checkpoint_every=-2 must be"),
        ({"keep_checkpoints": 0}, r"keep_checkpoints=0 must be"),
        ({"num_workers": -1}, r"num_workers=-1 must be an integer >= 0"),
        ({"grad_clip": float("nan")}, r"grad_clip=nan must be a finite number >= 0"),
        ({"grad_clip": -1.0}, r"grad_clip=-1.0 must be"),
        ({"precision": "fp8"}, r"unknown precision 'fp8'; valid: auto, fp32, bf16, fp16"),
    ],
)
def test_train_config_rejects_bad_values(kwargs: dict[str, object], message: str) -> None:
    values: dict[str, object] = {"steps": 1}
    values.update(kwargs)
    with pytest.raises(ParameterError, match=message):
        TrainConfig(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_on_cpu_is_refused(tmp_path: Path, precision: str) -> None:
    with pytest.raises(ParameterError, match=rf"precision '{precision}' needs a CUDA device, "
                       r"not cpu.*--precision fp32"):
        train(tiny(), EpochImages(), tmp_path, settings(1, precision=precision))


def test_training_precision_is_inference_precision() -> None:
    """One rule: the trainer asks learned.autocast_dtype, so ``auto`` on a CUDA device without
    bf16 trains in fp16 (with the gradient scaler), as inference runs, not in bf16."""
    from inpaint_core.learned import autocast_dtype
    from inpaint_core.training.trainer import _autocast

    cuda, cpu = torch.device("cuda:0"), torch.device("cpu")
    for precision in ("auto", "fp32", "bf16", "fp16"):
        config = settings(1, precision=precision)
        assert _autocast(config, cuda) == autocast_dtype(precision, "cuda:0")
    auto = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    assert _autocast(settings(1, precision="auto"), cuda) is auto
    assert _autocast(settings(1, precision="auto"), cpu) is None
    assert _autocast(settings(1, precision="fp32"), cuda) is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"networks": ()}, r"at least one network name"),
        ({"networks": ("g",), "lr": 0.0}, r"lr=0.0 must be > 0"),
        ({"networks": ("g",), "betas": (0.5, 1.0)}, r"betas=\(0.5, 1.0\) must lie in \[0, 1\)"),
    ],
)
def test_optimizer_spec_rejects_bad_values(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        OptimizerSpec(**kwargs)  # type: ignore[arg-type]


# --- the real edge GAN -------------------------------------------------------------------------
def test_edge_gan_training_run_writes_inference_weights(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = EdgeGanTraining(EdgeGanConfig(**TINY_EDGE_GAN))  # type: ignore[arg-type]
    out = tmp_path / "run"
    result = train(model, EpochImages(size=32), out, settings(2, checkpoint_every=1))
    assert steps_on_disk(out)[-3:] == [f"step-00000002{s}" for s in
                                       (".json", ".safetensors", ".state.pt")]
    full, _ = load_checkpoint(result.checkpoint)
    assert {key.split(".")[0] for key in full} == {
        "edge_generator", "image_generator", "edge_discriminator", "global_discriminator",
        "local_discriminator",
    }
    raw = safetensors.torch.load_file(str(result.weights))
    assert {key.split(".")[0] for key in raw} == {"edge_generator", "image_generator"}
    assert {tensor.dtype for tensor in raw.values() if tensor.is_floating_point()} == {
        torch.float16
    }
    sidecar = json.loads((out / "edge-gan.json").read_text())
    assert sidecar["method"] == "edge-gan" and sidecar["step"] == 2
    assert sidecar["config"]["texture_loss"] == "discriminator-features"
    assert sidecar["extra"]["texture_loss"] == "discriminator-features"
    assert sidecar["extra"]["prior"] == "none"
    header = list(read_log(out)[0])
    for key in ("d1_loss", "g1_adv", "g1_fm", "d2_loss", "d3_loss", "g2_adv2", "g2_adv3",
                "g2_perceptual", "g2_style", "g2_l1", "hole_psnr"):
        assert key in header
    assert all(math.isfinite(value) for value in result.losses.values())


def test_edge_gan_l1_goes_down_on_a_fixed_batch(tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = EdgeGanConfig(**TINY_EDGE_GAN, lr=1e-3)  # type: ignore[arg-type]
    out = tmp_path / "run"
    train(EdgeGanTraining(config), EpochImages(size=32, fixed=True), out,
          settings(12, checkpoint_every=100))
    rows = read_log(out)
    assert all(math.isfinite(float(value)) for row in rows for value in row.values())
    l1 = [float(row["g2_l1"]) for row in rows]
    psnr = [float(row["hole_psnr"]) for row in rows]
    assert sum(l1[-3:]) / 3 < 0.95 * l1[0], l1
    assert sum(psnr[-3:]) / 3 > psnr[0] + 0.5, psnr
