"""Train or fine-tune a learned method: the one recipe behind ``inpaint train``, the napari
plugin's "Fit to this image" and ``benchmarks/fit_to_scan.py``.

:func:`fine_tune` resolves the method and its architecture config (from the run it resumes,
else from the weights it starts from, with ``--option`` values on top), builds its training
module from a seeded initialisation and yields the :class:`~inpaint_core.training.trainer.
Trainer`'s :class:`~inpaint_core.training.trainer.TrainProgress` after every step, so that a
caller shows progress and can stop between steps; :func:`~inpaint_core.training.trainer.follow`
runs it to the end. The data is the caller's: a
:class:`~inpaint_core.training.datasets.ScanPatchDataset` of the intact part of one image to
fit a method to it, or any dataset of the trainer's items.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from inpaint_core.api import get_method, list_methods
from inpaint_core.checkpoint import checkpoint_paths
from inpaint_core.errors import ParameterError
from inpaint_core.learned import LearnedMethod, config_from_dict, parse_options
from inpaint_core.training.runs import find_latest_checkpoint, read_run_info
from inpaint_core.training.trainer import TrainConfig, Trainer, TrainProgress, TrainResult

__all__ = ["current_weights", "fine_tune", "learned_method", "run_config"]


def learned_method(name: str) -> type[LearnedMethod]:
    """The class of the registered learned method ``name``.

    Raises:
        UnknownMethodError: no method of that name (the valid names are listed).
        ParameterError: a method that is not learned (the learned ones are listed).
    """
    method_class = get_method(name)
    if not issubclass(method_class, LearnedMethod):
        learned = ", ".join(info.name for info in list_methods() if info.learned) or "none"
        raise ParameterError(f"method {name!r} is not learned; learned methods: {learned}")
    return method_class


def current_weights(method: str, params: Mapping[str, Any] | None = None) -> Path:
    """The ``.safetensors`` file that ``method`` built with ``params`` runs with: its
    ``weights`` parameter, else ``$INPAINT_WEIGHTS_DIR``'s or the shipped file.

    Raises:
        ParameterError: ``method`` is not learned, or a bad parameter.
        MissingWeightsError: there is no such file (the method's own message, which says how
            to train or install weights).
    """
    instance = learned_method(method)(**dict(params or {}))
    weights = checkpoint_paths(instance.weights_path())[0]
    if not weights.is_file():
        instance.load_networks("cpu")  # raises the method's own "no weights" message
    return weights


def run_config(
    method_class: type[LearnedMethod],
    *,
    init: str | Path | None = None,
    resume: str | Path | None = None,
    options: Mapping[str, str] | None = None,
) -> Any:
    """The architecture config (``method_class.config_class``) a run trains.

    A resumed run keeps its checkpoint's config; otherwise the ``init`` weights' config (the
    class defaults without ``init``) with ``options`` (``key=value`` texts, see
    :func:`~inpaint_core.learned.parse_options`) applied on top.

    Raises:
        ParameterError: ``options`` with ``resume``, or a bad option.
        MissingWeightsError, InvalidWeightsError: an unreadable ``resume`` or ``init``.
    """
    config_class = method_class.config_class
    if resume is not None:
        if options:
            raise ParameterError(
                "--option cannot change a resumed run's settings; drop it, or start a new run "
                "with --init CHECKPOINT to fine-tune with other settings"
            )
        return config_from_dict(config_class, read_run_info(resume).config)
    base = None if init is None else config_from_dict(config_class, read_run_info(init).config)
    return parse_options(config_class, dict(options or {}), base)


def fine_tune(
    method: str,
    dataset: Dataset[dict[str, Tensor]],
    out: str | Path | None,
    settings: TrainConfig,
    *,
    init: str | Path | None = None,
    resume: str | Path | None = None,
    options: Mapping[str, str] | None = None,
    vgg_weights: str | None = None,
    training_data: Mapping[str, Any] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Generator[TrainProgress, None, TrainResult]:
    """Train learned ``method`` on ``dataset`` into the run folder ``out``, yielding progress
    after every step; returns the :class:`~inpaint_core.training.trainer.TrainResult`.

    Nothing runs before the first ``next()``; every error below is raised from there.

    Args:
        method: a registered learned method's name.
        dataset: yields ``{"image": (3, S, S), "mask": (1, S, S)}`` float32 items, 1 = hole.
        out: the run folder; None: the folder of the run ``resume`` names.
        settings: the run's settings; ``settings.seed`` also seeds the networks' initialisation.
        init: weights to start from (fine-tuning; e.g. :func:`current_weights`); None trains
            from scratch.
        resume: a checkpoint or run folder of this method to continue.
        options: ``key=value`` texts for the architecture config (:func:`run_config`).
        vgg_weights: VGG-19 weights for perceptual and style losses.
        training_data: a JSON-ready description of the data, kept in every sidecar.
        should_stop: polled after every step; True saves a checkpoint and returns.

    Raises:
        ParameterError: ``method`` is not learned, a bad option, or no ``out`` nor ``resume``.
        As :func:`run_config` and :class:`~inpaint_core.training.trainer.Trainer`.
    """
    method_class = learned_method(method)
    config = run_config(method_class, init=init, resume=resume, options=options)
    if out is None:
        if resume is None:
            raise ParameterError("a run folder is needed: give out, or resume to continue one")
        out = find_latest_checkpoint(resume).parent.parent
    torch.manual_seed(settings.seed)  # the initial weights are part of what the seed fixes
    model = method_class.build_training(config, vgg_weights=vgg_weights)
    trainer = Trainer(
        model, dataset, out, settings, training_data=training_data, resume=resume, init=init
    )
    return (yield from trainer.steps(should_stop))
