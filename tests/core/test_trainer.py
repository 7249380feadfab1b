"""The shared trainer: logs, checkpoints, inference weights, resume, init, stopping, errors."""

from __future__ import annotations

import copy
import csv
import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import safetensors.torch
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from inpaint_core.checkpoint import (
    flatten_state,
    load_checkpoint,
    save_checkpoint,
    sha256_file,
)
from inpaint_core.errors import (
    InvalidInputError,
    InvalidWeightsError,
    MissingWeightsError,
    OutputExistsError,
    ParameterError,
)
from inpaint_core.trainable.model import OptimizerSpec, Phase, TrainableModel
from inpaint_core.training.trainer import (
    TrainConfig,
    find_latest_checkpoint,
    read_run_info,
    train,
)
from inpaint_methods.edge_gan import EdgeGan, EdgeGanConfig, EdgeGanTraining

SIZE = 16
TINY_EDGE_GAN = dict(EdgeGan.smoke_test_options)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class TinyFill(TrainableModel):
    """A 1-conv generator with a masked L1 loss, plus a critic with its own optimiser.

    The input gets a little noise from the global torch RNG, so a resumed run matches an
    uninterrupted one only if the RNG state is restored too. ``nan_from`` makes the generator
    loss NaN from that call of ``training_step`` on.
    """

    method = "tiny-fill"
    inference_networks = ("generator",)

    def __init__(self, tag: str = "a", lr: float = 1e-2, nan_from: int | None = None) -> None:
        super().__init__()
        self.tag, self.lr, self.nan_from, self.calls = tag, lr, nan_from, 0
        self.generator = nn.Conv2d(4, 3, 3, padding=1)
        self.critic = nn.Conv2d(3, 1, 4, stride=4)

    def config_dict(self) -> dict[str, object]:
        return {"tag": self.tag, "lr": self.lr}

    def optimizer_specs(self) -> dict[str, OptimizerSpec]:
        return {
            "critic": OptimizerSpec(("critic",), self.lr),
            "generator": OptimizerSpec(("generator",), self.lr),
        }

    def training_metadata(self) -> dict[str, object]:
        return {"flavour": "tiny"}

    def training_step(self, batch: dict[str, Tensor]) -> Iterator[Phase]:
        images, masks = batch["image"], batch["mask"]
        self.calls += 1
        noisy = images + 0.01 * torch.randn_like(images)
        fake = torch.sigmoid(self.generator(torch.cat([noisy * (1 - masks), masks], dim=1)))
        critic = self.critic(fake.detach()).mean() - self.critic(images).mean()
        yield Phase("critic", critic, {"critic": float(critic.detach())})
        l1 = ((fake - images).abs() * masks).mean() / masks.mean()
        loss = l1 - 0.01 * self.critic(fake).mean()
        if self.nan_from is not None and self.calls >= self.nan_from:
            loss = loss * float("nan")
        yield Phase("generator", loss, {"l1": float(l1.detach()), "gen": float(loss.detach())})


class EpochImages(Dataset):
    """Deterministic random images that change with the epoch, and one fixed hole.

    ``fixed=True`` returns the same image for every index and epoch (a fixed batch).
    """

    def __init__(self, items: int = 2, size: int = SIZE, fixed: bool = False) -> None:
        self.items, self.size, self.fixed, self.epoch = items, size, fixed, 0
        self.mask = torch.zeros(1, size, size)
        self.mask[:, size // 4 : size // 2 + 2, size // 5 : size // 2 + 3] = 1.0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.items

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        if self.fixed:
            rows, cols = torch.meshgrid(
                torch.linspace(0, 1, self.size), torch.linspace(0, 1, self.size), indexing="ij"
            )
            image = torch.stack([rows, cols, 0.5 + 0.4 * torch.sin(6 * cols)])
        else:
            generator = torch.Generator().manual_seed(1000 * self.epoch + index)
            image = torch.rand(3, self.size, self.size, generator=generator)
        return {"image": image, "mask": self.mask.clone()}


def tiny(seed: int = 0, **kwargs: object) -> TinyFill:
    torch.manual_seed(seed)
    return TinyFill(**kwargs)  # type: ignore[arg-type]


def settings(steps: int, **kwargs: object) -> TrainConfig:
    values: dict[str, object] = {"batch_size": 2, "device": "cpu", "log_every": 1}
    values.update(kwargs)
    return TrainConfig(steps=steps, **values)  # type: ignore[arg-type]


def read_log(out: Path) -> list[dict[str, str]]:
    with (out / "log.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def steps_on_disk(out: Path) -> list[str]:
    return sorted(p.name for p in (out / "checkpoints").iterdir())


def tensors_of(path: Path) -> dict[str, Tensor]:
    return load_checkpoint(path)[0]


def assert_same_tensors(first: dict[str, Tensor], second: dict[str, Tensor]) -> None:
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key


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
