"""The test kit for learned methods: train a tiny model, check its losses and its weights.

Use it in a learned method's tests, with a config small enough to train in seconds::

    from inpaint_core.testing_learned import check_learned_method

    def test_my_method_trains_and_round_trips(tmp_path):
        check_learned_method(MyMethod, {"base_channels": 4}, tmp_path, loss_key="l1")

It raises ``AssertionError`` naming the method and the broken rule. A method that cannot be
trained here (or an architecture that only runs published weights) gets the inference part,
on untrained weights: :func:`check_untrained_method`.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from inpaint_core.api import get_method
from inpaint_core.checkpoint import flatten_state, load_checkpoint, save_checkpoint
from inpaint_core.configs import config_to_dict
from inpaint_core.learned import LearnedMethod
from inpaint_core.testing import check_method, contract_image, contract_mask
from inpaint_core.training.trainer import TrainConfig, TrainResult, train

__all__ = [
    "FixedBatch",
    "box_masks",
    "check_batches",
    "check_learned_inference",
    "check_learned_method",
    "check_untrained_method",
    "train_tiny",
]


def box_masks(size: int, top: int, bottom: int, left: int, right: int, batch: int = 1) -> Tensor:
    """float32 ``(batch, 1, size, size)`` masks with 1 in ``[top:bottom, left:right]``."""
    mask = torch.zeros(batch, 1, size, size)
    mask[:, :, top:bottom, left:right] = 1.0
    return mask


class FixedBatch(Dataset[dict[str, Tensor]]):
    """The same smooth, striped image and one block hole at every index: a fixed batch.

    Items: ``{"image": (3, size, size) float32 in [0, 1], "mask": (1, size, size) 1 = hole}``.
    The hole covers rows ``size/4 .. size/2 + 2`` and columns ``size/5 .. size/2 + 3``.
    """

    def __init__(self, size: int = 32, items: int = 2) -> None:
        self.size, self.items = size, items
        self.mask = box_masks(size, size // 4, size // 2 + 2, size // 5, size // 2 + 3)[0]
        rows, cols = torch.meshgrid(
            torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij"
        )
        self.image = torch.stack([rows, cols, 0.5 + 0.4 * torch.sin(6 * cols)])

    def __len__(self) -> int:
        return self.items

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return {"image": self.image.clone(), "mask": self.mask.clone()}


def _method_class(method: str | type[LearnedMethod]) -> type[LearnedMethod]:
    found = get_method(method) if isinstance(method, str) else method
    if not (isinstance(found, type) and issubclass(found, LearnedMethod)):
        raise AssertionError(f"{method!r} is not a LearnedMethod")
    return found


def train_tiny(
    method: str | type[LearnedMethod],
    options: dict[str, Any],
    out: Path,
    *,
    steps: int = 12,
    size: int = 32,
    batch_size: int = 2,
    seed: int = 0,
) -> tuple[Any, TrainResult]:
    """Train ``method``'s config ``options`` for ``steps`` on :class:`FixedBatch` into ``out``.

    Returns the :class:`~inpaint_core.trainable.model.TrainableModel` (trained, in memory) and
    the :class:`~inpaint_core.training.trainer.TrainResult`; ``out/log.csv`` has every step.
    """
    cls = _method_class(method)
    torch.manual_seed(seed)
    model = cls.build_training(cls.config_class(**options))
    settings = TrainConfig(
        steps=steps,
        batch_size=batch_size,
        device="cpu",
        log_every=1,
        checkpoint_every=steps,
        seed=seed,
    )
    return model, train(model, FixedBatch(size), out, settings)


def _rng() -> np.random.Generator:
    return np.random.default_rng(0)


def _half_rounded(state: dict[str, Tensor]) -> dict[str, Tensor]:
    return {k: v.half().float() if v.is_floating_point() else v for k, v in state.items()}


def check_learned_method(
    method: str | type[LearnedMethod],
    options: dict[str, Any],
    folder: Path,
    *,
    loss_key: str,
    steps: int = 12,
    size: int = 32,
    decrease: float = 0.95,
) -> Path:
    """Train a tiny ``method`` on a fixed batch and check its losses, checkpoint and weights.

    Rules: every logged value is finite; the mean of the last three ``loss_key`` values is
    below ``decrease`` times the first; the final full checkpoint restores networks equal to
    the trained ones; the fp16 inference weights load into networks equal to the trained ones
    rounded to fp16, and give outputs identical to an fp32 file of those rounded networks;
    and :func:`check_learned_inference` on the weights.

    Args:
        method: a registered name or a :class:`~inpaint_core.learned.LearnedMethod` class.
        options: keyword arguments of the method's config class (a tiny architecture).
        folder: an empty scratch folder (pytest's ``tmp_path``).
        loss_key: a ``log.csv`` column that must go down (a reconstruction term).
        steps, size: training steps and image side.
        decrease: the factor the loss must fall by.

    Returns:
        The inference weights file the run wrote.
    """
    cls = _method_class(method)
    name = cls.info.name
    model, result = train_tiny(cls, options, folder / "run", steps=steps, size=size)
    with (folder / "run" / "log.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        for key, value in row.items():
            if value not in ("", None) and not math.isfinite(float(value)):
                raise AssertionError(f"method {name!r}: {key} is {value} at step {row['step']}")
    if loss_key not in rows[0]:
        raise AssertionError(f"method {name!r}: no {loss_key!r} in the log ({', '.join(rows[0])})")
    series = [float(row[loss_key]) for row in rows]
    if not sum(series[-3:]) / 3 < decrease * series[0]:
        raise AssertionError(f"method {name!r}: {loss_key} did not go down: {series}")

    # The full checkpoint restores every trained network exactly.
    tensors, info = load_checkpoint(result.checkpoint, expected_method=name)
    trained = flatten_state({child: net.state_dict() for child, net in model.named_children()})
    for key, value in trained.items():
        if key not in tensors or not torch.equal(tensors[key], value):
            raise AssertionError(f"method {name!r}: checkpoint entry {key!r} differs")

    # The fp16 inference weights equal the trained networks rounded to fp16.
    instance = cls(weights=str(result.weights), device="cpu")
    loaded = instance.load_networks("cpu")
    for child in model.inference_networks:
        expected = _half_rounded(getattr(model, child).state_dict())
        for key, value in getattr(loaded, child).state_dict().items():
            if not torch.equal(value, expected[key]):
                raise AssertionError(f"method {name!r}: weights {child}.{key} differ after load")
    rounded = folder / f"{name}-fp32.safetensors"
    states = {
        child: _half_rounded(getattr(model, child).state_dict())
        for child in model.inference_networks
    }
    save_checkpoint(
        rounded, flatten_state(states), method=name, config=model.config_dict(), step=info.step
    )
    image = contract_image(40, 56)[:, :, :3].astype(np.float32)
    mask = contract_mask(40, 56)
    first = cls(weights=str(result.weights), device="cpu").run(image, mask, _rng())
    second = cls(weights=str(rounded), device="cpu").run(image, mask, _rng())
    if not np.array_equal(first.image, second.image):
        raise AssertionError(f"method {name!r}: fp16 weights and their fp32 copy disagree")
    check_learned_inference(cls, result.weights)
    return result.weights


def check_learned_inference(method: str | type[LearnedMethod], weights: Path) -> None:
    """The weights file ``weights`` runs: ``run_batch`` equals one ``run`` per image
    (:func:`check_batches`) and the method keeps :func:`~inpaint_core.testing.check_method`'s
    contract."""
    cls = _method_class(method)
    check_batches(cls(weights=str(weights), device="cpu"))
    check_method(cls, {"weights": str(weights), "device": "cpu"})


def check_untrained_method(
    method: str | type[LearnedMethod], options: dict[str, Any], folder: Path, seed: int = 0
) -> Path:
    """:func:`check_learned_inference` on untrained networks of the config ``options``.

    For what cannot be trained here (an inference-only method, an architecture that only runs
    published weights): the networks are built from ``torch.manual_seed(seed)`` and saved as
    ``folder/NAME.safetensors`` (with their sidecar), which is returned.
    """
    cls = _method_class(method)
    name = cls.info.name
    config = cls.config_class(**options)
    torch.manual_seed(seed)
    networks = cls.build_networks(config)
    states = {child: module.state_dict() for child, module in networks.named_children()}
    path = folder / f"{name}.safetensors"
    save_checkpoint(path, flatten_state(states), method=name, config=config_to_dict(config), step=0)
    check_learned_inference(cls, path)
    return path


def check_batches(method: LearnedMethod, atol: float = 1e-5) -> None:
    """``method.run_batch`` on images of two sizes equals one ``run`` per image (to ``atol``).

    Raises:
        AssertionError: naming the method and the image that differs.
    """
    name = method.info.name
    images = [contract_image(40, 56, seed)[:, :, :3].astype(np.float32) for seed in range(3)]
    images.append(contract_image(33, 47, 3)[:, :, :3].astype(np.float32))
    masks = [contract_mask(40, 56)] * 3 + [contract_mask(33, 47)]
    masks[1] = np.roll(masks[1], 5, axis=1)
    batched = method.run_batch(images, masks, 0)
    for index, (image, mask) in enumerate(zip(images, masks, strict=True)):
        single = method.run(image, mask, _rng())
        got = batched[index]
        got = got.image if hasattr(got, "image") else got
        if not np.allclose(got, single.image, atol=atol):
            difference = float(np.abs(got - single.image).max())
            raise AssertionError(
                f"method {name!r}: run_batch differs from run on image {index} by {difference}"
            )
