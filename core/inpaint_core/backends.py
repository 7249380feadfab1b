"""How a learned method's :meth:`~inpaint_core.learned.LearnedMethod.predict` is executed.

Three backends, chosen by the learned ``backend`` parameter (``--backend`` on ``inpaint run``
and ``inpaint restore``), and ``auto``, the default, which picks one of them per input shape
(:meth:`inpaint_core.learned.LearnedMethod.auto_backend`): ``compile`` on the CPU for a shape
the caller announced often enough to repay the compilation
(:meth:`~inpaint_core.method.InpaintMethod.expect_windows`, which the tiled engine calls), else
``eager``. The speeds and the break-even counts behind it are measured in
``benchmarks/RESULTS.md`` (``benchmarks/learned_flops.py``, ``benchmarks/compile_break_even.py``):

- ``eager``: PyTorch as written, under ``torch.inference_mode`` (oneDNN convolutions, the
  weights channels-last on the CPU for networks without InstanceNorm, see
  :func:`inpaint_core.learned.prepare_for_inference`).
- ``compile``: ``torch.compile`` (Inductor) of ``predict``, run under ``torch.no_grad``:
  Dynamo cannot keep its guards under ``inference_mode`` on LaMa with torch 2.13. One
  compiled function per loaded networks; Dynamo compiles once per input shape (a tile size),
  so the first tile of each size pays the compilation. torch.compile is not thread-safe, so
  a compiled network runs one call at a time, whichever thread calls it.
- ``onnx``: ONNX Runtime's CPU execution provider on ``predict`` exported with
  ``torch.onnx.export`` (the optional extra ``pip install 'napari-inpaint[onnx]'``). The model
  is exported once per architecture, weights, method settings and input shape, and kept in
  the user's cache folder (:func:`onnx_cache_dir`) under a key of the weights' sha256, the
  shape and those settings. CPU and fp32 only.

All three run on BatchNorm-folded networks (:func:`inpaint_core.fold.fold_batch_norms`): a
folded copy is made once per loaded networks and kept while those networks live; the loaded
networks keep their checkpoint's state unchanged.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import os
import threading
import weakref
from collections.abc import Callable, Iterator
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from inpaint_core.errors import InpaintError, ParameterError
from inpaint_core.fold import fold_batch_norms

if TYPE_CHECKING:
    from inpaint_core.learned import LearnedMethod

__all__ = [
    "ONNX_CACHE_ENV",
    "ONNX_INSTALL_HINT",
    "Backend",
    "OnnxMissingError",
    "onnx_cache_dir",
    "parse_backend",
    "prepared_networks",
    "run_predict",
]

ONNX_INSTALL_HINT = "pip install 'napari-inpaint[onnx]'"
#: Overrides the folder of exported ONNX models (default: the user's cache folder).
ONNX_CACHE_ENV = "INPAINT_ONNX_CACHE"


class Backend(str, Enum):
    """The ways :func:`run_predict` can execute a method's ``predict`` (``AUTO``: one of the
    others, chosen per input shape)."""

    AUTO = "auto"
    EAGER = "eager"
    COMPILE = "compile"
    ONNX = "onnx"


class OnnxMissingError(InpaintError):
    """``backend=onnx`` without ``onnx`` / ``onnxruntime`` installed."""


def parse_backend(value: object) -> Backend:
    """The :class:`Backend` named by ``value``; raises :class:`ParameterError` listing the
    valid names otherwise."""
    try:
        return Backend(value)
    except ValueError:
        valid = ", ".join(member.value for member in Backend)
        raise ParameterError(f"backend={value!r} is not one of {valid}") from None


_lock = threading.Lock()
_folded: weakref.WeakKeyDictionary[nn.Module, nn.Module | None] = weakref.WeakKeyDictionary()
_compiled: weakref.WeakKeyDictionary[nn.Module, nn.Module] = weakref.WeakKeyDictionary()
_onnx_views: weakref.WeakKeyDictionary[nn.Module, nn.Module] = weakref.WeakKeyDictionary()
#: The input shapes each compiled view has seen (the first of each shape compiles).
_compiled_shapes: weakref.WeakKeyDictionary[nn.Module, set[tuple[int, ...]]] = (
    weakref.WeakKeyDictionary()
)
#: torch.compile is not thread-safe (pytorch/pytorch#118260, #136833): threads (``--workers
#: N``, dask's threads) run compiled networks one call at a time, across the process.
_compiled_lock = threading.Lock()
logger = logging.getLogger(__name__)


def prepared_networks(networks: nn.Module) -> nn.Module:
    """``networks`` with every foldable BatchNorm folded, as a copy made once (``networks``
    itself when nothing folds); the values equal ``networks``' up to float rounding."""
    with _lock:
        if networks not in _folded:
            folded = copy.deepcopy(networks)
            # None = nothing folds; never the key itself, which would keep it alive
            _folded[networks] = folded if fold_batch_norms(folded) else None
        return _folded[networks] or networks


def _with_children(networks: nn.Module, wrap: Callable[[str, nn.Module], nn.Module]) -> nn.Module:
    """A shallow copy of ``networks`` whose child networks are ``wrap(name, child)``: the
    method's ``predict`` (and the container's own helpers) run eagerly around them."""
    view = copy.copy(networks)
    view._modules = {name: wrap(name, child) for name, child in networks._modules.items()}
    return view


@contextlib.contextmanager
def _running(
    grad_mode: contextlib.AbstractContextManager[Any], device: str, autocast: torch.dtype | None
) -> Iterator[None]:
    """``grad_mode`` (inference_mode or no_grad), and ``autocast`` on ``device`` unless None."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(grad_mode)
        if autocast is not None:
            stack.enter_context(torch.autocast(torch.device(device).type, dtype=autocast))
        yield


def run_predict(
    method: LearnedMethod,
    networks: nn.Module,
    image: Tensor,
    mask: Tensor,
    device: str,
    autocast: torch.dtype | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """``method.predict(networks, image, mask)`` through the method's ``backend`` parameter.

    ``auto`` becomes the backend :meth:`~inpaint_core.learned.LearnedMethod.auto_backend`
    picks for ``image``'s shape. ``eager`` runs ``predict`` under ``torch.inference_mode``.
    ``compile`` and ``onnx``
    replace each child network of ``networks`` (``generator``, ``edge_generator``, ...) by its
    compiled or exported form and run ``predict`` under ``torch.no_grad``: the networks hold
    the arithmetic, while ``predict`` may hold steps no graph can take (EdgeConnect's Canny
    edges run in NumPy).

    Args:
        method: the learned method; ``method.params["backend"]`` picks the backend.
        networks: its loaded, eval-mode networks on ``device``.
        image: float32 ``(B, 3, H, W)`` in [0, 1], padded as ``predict`` needs.
        mask: float32 ``(B, 1, H, W)``, 1 = hole.
        device: the resolved device of ``networks``.
        autocast: the CUDA autocast dtype (:func:`inpaint_core.learned.autocast_dtype`), None
            for plain fp32.

    Returns:
        As ``predict``: the filled ``(B, 3, H, W)`` in [0, 1] and the extra outputs.

    Raises:
        ParameterError: an unknown backend, or ``onnx`` off the CPU or with autocast.
        OnnxMissingError: ``onnx`` without onnx / onnxruntime installed.
    """
    backend = parse_backend(method.params.get("backend", Backend.AUTO.value))
    if backend is Backend.AUTO:
        backend = method.auto_backend(tuple(image.shape), device)
    prepared = prepared_networks(networks)
    if backend is Backend.EAGER:
        with _running(torch.inference_mode(), device, autocast):
            return method.predict(prepared, image, mask)
    if backend is Backend.COMPILE:
        with _lock:
            view = _compiled.get(prepared)
            if view is None:
                view = _compiled[prepared] = _with_children(
                    prepared, lambda _, child: torch.compile(child, dynamic=False)
                )
            seen = _compiled_shapes.setdefault(view, set())
            first = tuple(image.shape) not in seen
            seen.add(tuple(image.shape))
        if first:
            logger.info("%s: compiling for input %s with torch.compile (once per size; seconds "
                        "to minutes)", method.info.name, tuple(image.shape))
        with _compiled_lock, _running(torch.no_grad(), device, autocast):
            return method.predict(view, image, mask)
    if torch.device(device).type != "cpu":
        raise ParameterError(
            f"backend=onnx runs on the CPU only; this method runs on {device!r} (use "
            "device=cpu, or backend=eager / compile there)"
        )
    if autocast is not None:
        raise ParameterError(
            f"backend=onnx runs in fp32; precision={method.params.get('precision')!r} asks "
            "for autocast (use precision=fp32, or backend=eager / compile)"
        )
    runtime = _import_onnxruntime()
    with _lock:
        view = _onnx_views.get(prepared)
        if view is None:
            view = _onnx_views[prepared] = _with_children(
                prepared, lambda name, child: _OnnxNetwork(runtime, method.info.name, name, child)
            )
    with torch.no_grad():
        return method.predict(view, image, mask)


# --- ONNX Runtime ------------------------------------------------------------------------
def onnx_cache_dir() -> Path:
    """Where exported models are kept: ``$INPAINT_ONNX_CACHE``, else the user's cache folder
    (``platformdirs.user_cache_dir('napari-inpaint')/onnx``)."""
    given = os.environ.get(ONNX_CACHE_ENV)
    if given:
        return Path(given)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("napari-inpaint", appauthor=False)) / "onnx"


def _import_onnxruntime() -> Any:
    try:
        import onnx  # noqa: F401  (torch.onnx.export needs it)
        import onnxruntime
    except ImportError as e:
        raise OnnxMissingError(
            f"backend=onnx needs onnx and onnxruntime ({e.name} is not installed); install "
            f"them with `{ONNX_INSTALL_HINT}`, or use backend=eager"
        ) from e
    return onnxruntime


def _weights_digest(network: nn.Module) -> str:
    """sha256 of a network's tensors (names, shapes, dtypes, values): its architecture and
    weights, whatever file they came from."""
    digest = hashlib.sha256()
    for name, tensor in sorted(network.state_dict().items()):
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype};".encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


class _OnnxNetwork(nn.Module):
    """A child network run by ONNX Runtime: exported on the first call with each set of input
    shapes (a tile size) to ``onnx_cache_dir()/METHOD-CHILD-KEY.onnx``, KEY a digest of the
    weights' sha256, the input shapes and the torch version; an exported file is reused by
    later runs and processes. Inputs: float32 CPU tensors; outputs: float32 CPU tensors."""

    def __init__(self, runtime: Any, method: str, name: str, network: nn.Module) -> None:
        super().__init__()
        self._runtime = runtime
        self._label = f"{method}-{name}"
        self._network = [network]  # a list: not a child, never exported or moved twice
        self._digest = _weights_digest(network)
        self._sessions: dict[tuple[tuple[int, ...], ...], Any] = {}

    def forward(self, *inputs: Tensor) -> Tensor | tuple[Tensor, ...]:
        shapes = tuple(tuple(x.shape) for x in inputs)
        session = self._sessions.get(shapes)
        if session is None:
            session = self._sessions[shapes] = self._session(inputs, shapes)
        feeds = {f"input{i}": x.contiguous().numpy() for i, x in enumerate(inputs)}
        outputs = [torch.from_numpy(array) for array in session.run(None, feeds)]
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def _session(self, inputs: tuple[Tensor, ...], shapes: tuple[tuple[int, ...], ...]) -> Any:
        text = json.dumps([self._digest, shapes, torch.__version__])
        key = hashlib.sha256(text.encode()).hexdigest()[:32]
        path = onnx_cache_dir() / f"{self._label}-{key}.onnx"
        if not path.is_file():
            _export(self._network[0], inputs, path)
        options = self._runtime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        return self._runtime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )


def _export(network: nn.Module, inputs: tuple[Tensor, ...], path: Path) -> None:
    """Export ``network`` for ``inputs`` to ``path`` atomically (a partial file never stays
    under the final name)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.stem}.{os.getpid()}.{threading.get_ident()}.partial")
    names = [f"input{i}" for i in range(len(inputs))]
    try:
        with torch.no_grad(), _quiet_export():
            torch.onnx.export(network.eval(), tuple(inputs), str(partial), dynamo=True,
                              input_names=names, external_data=False)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


@contextlib.contextmanager
def _quiet_export() -> Any:
    """torch.onnx.export prints its progress; the log is the place for it."""
    import io

    sink = io.StringIO()
    with contextlib.redirect_stdout(sink):
        yield
    logger.debug("torch.onnx.export: %s", sink.getvalue())
