"""The base class of learned methods: weights, devices, padding, and the link to training.

A learned method subclasses :class:`LearnedMethod`. It names a frozen config dataclass
(architecture and training settings), the classes that build its inference networks and its
:class:`~inpaint_core.trainable.model.TrainableModel` from that config (none for training
when it only runs published weights), its smoke-test config, and implements
:meth:`LearnedMethod.predict` on tensors. This class does the rest of :meth:`run`:

- **weights**: the ``weights`` parameter (a checkpoint from ``inpaint train``), else
  ``$INPAINT_WEIGHTS_DIR/NAME.safetensors``, else the plugin's shipped weights folder. No
  weights is an error that says how to train them or where to put the file; random weights are
  never used. The sidecar's sha256 is checked, and its config rebuilds the networks.
- **device**: the ``device`` parameter (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``).
- **shape**: pads ``(H, W)`` at the bottom and right up to ``info.pad_multiple`` and crops
  back; :attr:`LearnedMethod.pad_mode` picks the padding (reflection by default).
"""

from __future__ import annotations

import os
import threading
from abc import abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Mapping
from enum import Enum
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inpaint_core.backends import Backend, run_predict
from inpaint_core.checkpoint import checkpoint_paths, load_checkpoint, unflatten_state
from inpaint_core.configs import config_from_dict, config_to_dict, parse_options
from inpaint_core.devices import resolve_device
from inpaint_core.errors import InvalidWeightsError, MissingWeightsError, ParameterError
from inpaint_core.learned_params import (
    DEVICE_PARAMETER,
    LEARNED_PARAMETERS,
    PRECISION_PARAMETER,
    WEIGHTS_DIR_ENV,
    WEIGHTS_PARAMETER,
)
from inpaint_core.method import InpaintMethod, MethodResult
from inpaint_core.trainable.model import TrainableModel

__all__ = [
    "DEVICE_PARAMETER",
    "LEARNED_PARAMETERS",
    "PRECISION_PARAMETER",
    "WEIGHTS_DIR_ENV",
    "WEIGHTS_PARAMETER",
    "LearnedMethod",
    "as_truncated",
    "config_from_dict",
    "config_to_dict",
    "pad_bottom_right",
    "pad_to_multiple",
    "parse_options",
    "prepare_for_inference",
]

#: Images are padded to at least this side before a network sees them.
MIN_SIDE = 16
_CACHE_SIZE = 2
_cache: OrderedDict[tuple[str, str, str, str], nn.Module] = OrderedDict()
#: Held while the cache is read or filled: threads (``--workers N``) asking for the same
#: networks at once get one loaded copy, not one each.
_cache_lock = threading.Lock()


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


#: The padding modes of :func:`pad_bottom_right` (:attr:`LearnedMethod.pad_mode` takes the
#: first two).
PAD_MODES = ("reflect", "symmetric", "zeros")


def _symmetric_index(size: int, total: int) -> Tensor:
    """Indices ``(total,)`` int64 of numpy's ``'symmetric'`` padding of ``size`` by
    ``total - size`` at the end: the mirror image with the edge repeated, period ``2 * size``
    (so any pad length works, as with ``np.pad``)."""
    index = torch.arange(total) % (2 * size)
    return torch.where(index < size, index, 2 * size - 1 - index)


def pad_bottom_right(tensor: Tensor, pad_h: int, pad_w: int, mode: str) -> Tensor:
    """Pad ``tensor`` ``(B, C, H, W)`` by ``pad_h`` rows at the bottom and ``pad_w`` columns at
    the right.

    Args:
        tensor: any dtype, ``(B, C, H, W)``.
        pad_h, pad_w: rows and columns to add (>= 0).
        mode: ``reflect``: torch's reflection (the edge not repeated: ``a b c | b a``), or
            replication where a pad is as long as its side; ``symmetric``: numpy's
            ``'symmetric'`` (the edge repeated: ``a b c | c b``), any pad length; ``zeros``.

    Returns:
        ``(B, C, H + pad_h, W + pad_w)``, same dtype and device.

    Raises:
        ParameterError: an unknown mode.
    """
    if mode not in PAD_MODES:
        raise ParameterError(f"pad mode {mode!r} is not one of {', '.join(PAD_MODES)}")
    if not pad_h and not pad_w:
        return tensor
    height, width = tensor.shape[-2:]
    if mode == "zeros":
        return F.pad(tensor, (0, pad_w, 0, pad_h), value=0.0)
    if mode == "symmetric":
        rows = _symmetric_index(height, height + pad_h).to(tensor.device)
        cols = _symmetric_index(width, width + pad_w).to(tensor.device)
        return tensor.index_select(-2, rows).index_select(-1, cols)
    torch_mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(tensor, (0, pad_w, 0, pad_h), mode=torch_mode)


def pad_to_multiple(tensor: Tensor, multiple: int, mode: str) -> Tensor:
    """Pad ``tensor`` ``(B, C, H, W)`` at the bottom and right (:func:`pad_bottom_right` with
    ``mode``) so that H and W are multiples of ``multiple``; crop ``[..., :H, :W]`` back."""
    height, width = tensor.shape[-2:]
    return pad_bottom_right(tensor, -height % multiple, -width % multiple, mode)


#: Subtracted from a network's [0, 1] output by :func:`as_truncated`: just under half an 8-bit
#: level, so that exact 1.0 (a saturated sigmoid) still writes 255.
_TRUNCATION_OFFSET = 0.4999 / 255.0


def as_truncated(image: Tensor) -> Tensor:
    """Shift ``image`` so that this project's round-to-nearest uint8 writer truncates instead.

    Reference implementations such as EdgeConnect and LaMa write ``int(x * 255)``: they
    truncate. Every writer here rounds to the nearest level (:func:`inpaint_core.arrays.
    from_float`), which would put about half the hole pixels one level above the reference's.
    ``rint(255 * (x - 0.4999 / 255)) == floor(255 * x)`` for all ``x`` in [0, 1] except a
    fractional part above 0.9999, where it is one level higher.

    Args:
        image: any shape, floating, values in [0, 1].

    Returns:
        The same shape and dtype, values in [0, 1].
    """
    return (image - _TRUNCATION_OFFSET).clamp(0.0, 1.0)


def autocast_dtype(
    precision: str, device: str, bf16_supported: bool | None = None
) -> torch.dtype | None:
    """The autocast dtype of inference with ``precision`` on ``device``; None = plain fp32.

    Args:
        precision: ``auto``, ``fp32``, ``bf16`` or ``fp16`` (:data:`PRECISION_PARAMETER`).
        device: a resolved device string (``cpu``, ``cuda:0``, ``mps``).
        bf16_supported: whether the CUDA device has bf16 (None: ask torch).

    Raises:
        ParameterError: an unknown precision, or bf16 / fp16 off CUDA (CPU autocast is not
            used: bf16 autocast hangs on some CPUs, and fp16 is slower than fp32 there).
    """
    choices = PRECISION_PARAMETER.choices
    if precision not in choices:
        raise ParameterError(f"precision={precision!r} must be one of {', '.join(choices)}")
    on_cuda = torch.device(device).type == "cuda"
    if precision == "fp32" or (precision == "auto" and not on_cuda):
        return None
    if not on_cuda:
        raise ParameterError(
            f"precision={precision!r} needs a CUDA device; this method runs on {device!r} "
            "(use precision=fp32 or auto there)"
        )
    if precision == "auto":
        if bf16_supported is None:
            bf16_supported = torch.cuda.is_bf16_supported()
        return torch.bfloat16 if bf16_supported else torch.float16
    return torch.bfloat16 if precision == "bf16" else torch.float16


def _channels_last(device: str) -> bool:
    """Whether inference on ``device`` runs channels-last (NHWC): on the CPU, where oneDNN's
    convolutions skip their NCHW reorders (``benchmarks/learned_flops.py``)."""
    return torch.device(device).type == "cpu"


def prepare_for_inference(networks: nn.Module, device: str) -> nn.Module:
    """Put eval-mode ``networks`` (already on ``device``) in the memory format inference runs
    in there: channels-last 4-D weights on the CPU (:func:`_channels_last`; a convolution then
    runs channels-last whatever its input's layout) unless the networks hold an InstanceNorm,
    which is slower channels-last than the convolutions gain (``benchmarks/RESULTS.md``).
    The values are unchanged; returns ``networks``."""
    instance_norm = any(isinstance(m, nn.InstanceNorm2d) for m in networks.modules())
    if _channels_last(device) and not instance_norm:
        networks.to(memory_format=torch.channels_last)
    return networks


class LearnedMethod(InpaintMethod):
    """A method that runs trained networks; see the module docstring.

    Subclasses set ``info`` (with ``learned=True`` and :data:`LEARNED_PARAMETERS`: weights,
    device and precision, among its parameters), ``config_class``, ``networks_class``, and
    ``training_class`` (or None: inference only), ``weights_folder`` and the smoke test's
    settings, and implement :meth:`predict`.
    """

    #: The frozen dataclass of architecture and training settings.
    config_class: ClassVar[type]
    #: Builds the inference module from a config (:meth:`build_networks`).
    networks_class: ClassVar[Callable[[Any], nn.Module]]
    #: Builds the training module from a config (:meth:`build_training`); None: the method
    #: only runs published weights and cannot be trained here.
    training_class: ClassVar[Callable[[Any], TrainableModel] | None] = None
    #: Values of the config's ``architecture`` that only run published weights (the
    #: reference's test path, not trainable here).
    inference_only_architectures: ClassVar[frozenset[str]] = frozenset()
    #: For an inference-only method: how to get its published weights, a clause such as
    #: "run `inpaint weights fetch NAME`, or ...", said when weights are missing or training
    #: is asked for.
    published_weights: ClassVar[str] = ""
    #: The smallest config that still runs every network and loss, as keyword arguments of
    #: ``config_class``: tests train it at 32 x 32 (or, inference only, run it untrained).
    smoke_test_options: ClassVar[Mapping[str, object]] = {}
    #: A training log column that must fall when the smoke config trains (a reconstruction
    #: term, :func:`inpaint_core.testing_learned.check_learned_method`); None when the method
    #: cannot be trained here.
    smoke_test_loss: ClassVar[str | None] = None
    #: Small configs of the architectures that only run published weights
    #: (:attr:`inference_only_architectures`), which tests run untrained.
    smoke_test_inference_options: ClassVar[tuple[Mapping[str, object], ...]] = ()
    #: The folder of shipped weights, holding ``NAME.safetensors`` and ``NAME.json``.
    weights_folder: ClassVar[Path | None] = None
    #: True when :meth:`predict` accepts batches ``(B, 3, H, W)`` with independent items, so
    #: :meth:`run_batch` stacks same-sized images into one forward pass.
    batch_predict: ClassVar[bool] = False
    #: How :meth:`run` pads ``(H, W)`` up to ``info.pad_multiple`` (see
    #: :func:`pad_bottom_right`): ``reflect`` (torch's, the default) or ``symmetric``
    #: (numpy's, the edge pixel repeated; LaMa's ``pad_img_to_modulo``).
    pad_mode: ClassVar[str] = "reflect"
    #: ``backend=auto`` on the CPU compiles the networks for an input size ``(H', W')`` once
    #: the windows of that size expected (:meth:`expect_windows`) hold at least this many
    #: pixels in all (windows x H' x W'): compiling costs about the same at any size while
    #: each window repays in proportion to its pixels. The break-even measured by
    #: ``benchmarks/compile_break_even.py`` (benchmarks/RESULTS.md). None: ``auto`` always
    #: runs eager (compile not measured faster).
    compile_after_pixels: ClassVar[int | None] = None

    @classmethod
    def build_networks(cls, config: Any) -> nn.Module:
        """The inference module (``networks_class(config)``); its children are
        ``TrainableModel.inference_networks``."""
        return cls.networks_class(config)

    @classmethod
    def build_training(cls, config: Any, *, vgg_weights: str | None = None) -> TrainableModel:
        """The training module for ``config``: ``training_class(config)`` (a method with a
        perceptual loss overrides this to pass the VGG-19 ``vgg_weights``).

        Raises:
            ParameterError: the method, or the config's architecture, is inference only.
        """
        cls.check_trainable(config)
        assert cls.training_class is not None  # check_trainable refuses None
        return cls.training_class(config)

    @classmethod
    def check_trainable(cls, config: Any) -> None:
        """Raise :class:`ParameterError` unless ``config`` can be trained here."""
        name = cls.info.name
        if cls.training_class is None:
            raise ParameterError(
                f"method {name!r} is inference-only: it cannot be trained with `inpaint "
                f"train`; import the published weights instead ({cls.published_weights})"
            )
        architecture = getattr(config, "architecture", None)
        value = architecture.value if isinstance(architecture, Enum) else architecture
        if value in cls.inference_only_architectures:
            raise ParameterError(
                f"architecture={value!r} is inference only: it runs published weights and "
                f"cannot be trained here; train architecture='lite'"
            )

    @abstractmethod
    def predict(
        self, networks: nn.Module, image: Tensor, mask: Tensor
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Fill a padded batch.

        Args:
            networks: the module from :meth:`build_networks`, loaded, in eval mode.
            image: float32 ``(B, 3, H, W)`` in [0, 1]; H and W multiples of ``pad_multiple``;
                B is 1 unless the class sets ``batch_predict``.
            mask: float32 ``(B, 1, H, W)``, 1 = hole.

        Returns:
            The filled image ``(B, 3, H, W)`` in [0, 1] (only hole pixels are used) and extra
            outputs by name, each ``(B, 1, H, W)`` in [0, 1].
        """

    # --- weights -----------------------------------------------------------------------
    @classmethod
    def default_weights(cls) -> Path:
        """Where weights are looked for when the ``weights`` parameter is unset."""
        folder = os.environ.get(WEIGHTS_DIR_ENV) or cls.weights_folder
        if folder is None:
            raise MissingWeightsError(cls._how_to_get_weights(None))
        return Path(folder) / f"{cls.info.name}.safetensors"

    @classmethod
    def _how_to_get_weights(cls, missing: Path | None) -> str:
        name = cls.info.name
        where = f"no weights file {missing}" if missing else "no weights folder is configured"
        if cls.training_class is None:
            how = cls.published_weights[:1].upper() + cls.published_weights[1:]
            return (
                f"method {name!r} has no weights ({where}) and cannot be trained here. "
                f"{how} and pass --weights W.safetensors (Python: "
                f"weights=...), or put {name}.safetensors and {name}.json into a folder named "
                f"by {WEIGHTS_DIR_ENV}"
            )
        return (
            f"method {name!r} has no trained weights ({where}). Train them with "
            f"`inpaint train {name} --data IMAGES --out runs/{name}` and pass "
            f"--weights runs/{name}/{name}.safetensors (Python: weights=...), or put "
            f"{name}.safetensors and {name}.json into {missing.parent if missing else 'a folder'} "
            f"(or a folder named by {WEIGHTS_DIR_ENV})"
        )

    def weights_path(self) -> Path:
        """The checkpoint this instance will load (not checked for existence)."""
        given = self.params.get("weights")
        if not given:
            return self.default_weights()
        from inpaint_core.weights import resolve_weights

        return resolve_weights(given, self.info.name)

    def load_networks(self, device: str) -> nn.Module:
        """Load (or reuse) the inference networks on ``device``, in eval mode; thread-safe
        (concurrent callers of the same networks share one load)."""
        path = self.weights_path()
        weights, _ = checkpoint_paths(path)
        if not weights.is_file():
            if self.params.get("weights"):
                raise MissingWeightsError(
                    f"weights file {weights} given for method {self.info.name!r} does not exist"
                )
            raise MissingWeightsError(self._how_to_get_weights(weights))
        key = (self.info.name, str(weights.resolve()), str(weights.stat().st_mtime_ns), device)
        with _cache_lock:
            if key in _cache:
                _cache.move_to_end(key)
                return _cache[key]
            networks = self._load(weights, device)
            _cache[key] = networks
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
            return networks

    def _load(self, weights: Path, device: str) -> nn.Module:
        """The networks of checkpoint ``weights`` on ``device``, eval mode, not cached."""
        tensors, info = load_checkpoint(weights, expected_method=self.info.name)
        config = config_from_dict(self.config_class, info.config)
        networks = self.build_networks(config)
        states = unflatten_state(tensors)
        for name, child in networks.named_children():
            if name not in states:
                raise InvalidWeightsError(
                    f"weights {weights} lack network {name!r} (found: {', '.join(states)})"
                )
            try:
                child.load_state_dict(states[name])
            except RuntimeError as e:
                raise InvalidWeightsError(f"weights {weights}: {name!r} does not fit: {e}") from e
        prepare_for_inference(networks.to(device).eval(), device)
        networks.checkpoint_info = info  # type: ignore[assignment]
        return networks

    # --- running -----------------------------------------------------------------------
    def _tensors(
        self, image: np.ndarray, mask: np.ndarray, device: str
    ) -> tuple[Tensor, Tensor]:
        """``(1, 3, H', W')`` image and ``(1, 1, H', W')`` hole on ``device``, padded."""
        height, width, channels = image.shape
        colour = np.repeat(image, 3, axis=2) if channels == 1 else image
        tensor = torch.from_numpy(np.ascontiguousarray(colour.transpose(2, 0, 1)))[None]
        hole = torch.from_numpy(mask.astype(np.float32))[None, None]
        padded_h, padded_w = self.padded_shape(height, width)
        pad_h, pad_w = padded_h - height, padded_w - width
        tensor = pad_bottom_right(tensor, pad_h, pad_w, self.pad_mode)
        hole = pad_bottom_right(hole, pad_h, pad_w, self.pad_mode)
        if torch.device(device).type == "cuda":  # page-locked: the copy overlaps compute
            tensor, hole = tensor.pin_memory(), hole.pin_memory()
        return tensor.to(device, non_blocking=True), hole.to(device, non_blocking=True)

    def padded_shape(self, height: int, width: int) -> tuple[int, int]:
        """The ``(H', W')`` an ``(height, width)`` image is padded to for :meth:`predict`: up
        to a multiple of ``info.pad_multiple``, and to at least ``MIN_SIDE`` (the networks'
        narrowest layers need it)."""
        multiple = self.info.pad_multiple
        return (_round_up(max(height, MIN_SIDE), multiple),
                _round_up(max(width, MIN_SIDE), multiple))

    def expect_windows(self, shapes: Mapping[tuple[int, int], int]) -> None:
        """Keep the expected count of each padded input size for ``backend=auto``
        (:meth:`auto_backend`); see :meth:`InpaintMethod.expect_windows`."""
        expected: dict[tuple[int, int], int] = {}
        for (height, width), count in shapes.items():
            padded = self.padded_shape(int(height), int(width))
            expected[padded] = expected.get(padded, 0) + int(count)
        self._expected_windows = expected

    def auto_backend(self, shape: tuple[int, ...], device: str) -> Backend:
        """The backend ``backend=auto`` runs an input of ``shape`` (``(B, 3, H', W')``,
        padded) with on ``device``: ``compile`` on the CPU when the windows of that ``(H', W')``
        expected (:meth:`expect_windows`) hold at least :attr:`compile_after_pixels` pixels,
        else ``eager`` (also on CUDA and MPS, where the break-even has not been measured)."""
        threshold = self.compile_after_pixels
        if threshold is None or torch.device(device).type != "cpu":
            return Backend.EAGER
        height, width = int(shape[-2]), int(shape[-1])
        expected = getattr(self, "_expected_windows", {}).get((height, width), 0)
        return Backend.COMPILE if expected * height * width >= threshold else Backend.EAGER

    @staticmethod
    def _result(
        filled: Tensor, extras: dict[str, Tensor], index: int, shape: tuple[int, ...]
    ) -> MethodResult:
        """Item ``index`` of a predicted batch, cropped to ``shape`` = ``(H, W, C)``."""
        height, width, channels = shape
        out = filled[index, :, :height, :width].float().clamp(0, 1).cpu().numpy()
        out = out.transpose(1, 2, 0)
        if channels == 1:
            out = out.mean(axis=2, keepdims=True)
        extra_arrays = {
            name: value[index, 0, :height, :width].float().clamp(0, 1).cpu().numpy()
            for name, value in extras.items()
        }
        return MethodResult(np.ascontiguousarray(out, dtype=np.float32), extra_arrays)

    def run(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> MethodResult:
        """Fill the hole with the trained networks; see :meth:`InpaintMethod.run`."""
        device = resolve_device(self.params.get("device", "auto"))
        networks = self.load_networks(device)
        tensor, hole = self._tensors(image, mask, device)
        filled, extras = self._predict_with_backend(networks, tensor, hole, device)
        return self._result(filled, extras, 0, image.shape)

    def _predict_with_backend(
        self, networks: nn.Module, image: Tensor, mask: Tensor, device: str
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """:meth:`predict` executed by the ``backend`` parameter's backend on BatchNorm-folded
        networks, with the ``precision`` parameter's autocast (:mod:`inpaint_core.backends`)."""
        dtype = autocast_dtype(str(self.params.get("precision", "auto")), device)
        return run_predict(self, networks, image, mask, device, dtype)

    def run_batch(
        self, images: list[np.ndarray], masks: list[np.ndarray], seed: int
    ) -> list[np.ndarray | MethodResult]:
        """Fill several images; same-sized ones run as one batch when ``batch_predict``.

        The networks are deterministic (eval mode) and ``predict`` treats batch items
        independently, so the results equal one :meth:`run` per image up to float rounding.
        """
        if not self.batch_predict:
            return super().run_batch(images, masks, seed)
        device = resolve_device(self.params.get("device", "auto"))
        networks = self.load_networks(device)
        groups: dict[tuple[int, int], list[int]] = {}
        for index, image in enumerate(images):
            groups.setdefault(image.shape[:2], []).append(index)
        results: list[np.ndarray | MethodResult] = [np.empty(0)] * len(images)
        for indices in groups.values():
            pairs = [self._tensors(images[i], masks[i], device) for i in indices]
            batch = torch.cat([tensor for tensor, _ in pairs])
            holes = torch.cat([hole for _, hole in pairs])
            filled, extras = self._predict_with_backend(networks, batch, holes, device)
            for position, index in enumerate(indices):
                results[index] = self._result(filled, extras, position, images[index].shape)
        return results
