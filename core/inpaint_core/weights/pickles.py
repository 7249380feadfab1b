"""Read published PyTorch checkpoints without running any code from them.

A ``.pth`` / ``.ckpt`` file is a pickle: loaded freely, it can import any module and call any
function it names. :func:`load_pickled` never does. It first tries ``torch.load(...,
weights_only=True)``, torch's own allow-list of tensors and plain containers. Where a file
pickles other objects (LaMa's Lightning checkpoint holds its OmegaConf training config, a
TorchScript file its module classes), it reads the file with :class:`RestrictedUnpickler`
instead: tensors, plain containers and a fixed list of harmless builtins are rebuilt; every
other global becomes an inert :class:`Placeholder` subclass that only records what the pickle
gave it. No module the pickle names is imported, and a placeholder's methods store values
and nothing else, so a payload such as ``os.system("...")`` becomes a record of that call.

Both of torch's file layouts are read: the zip archive (torch >= 1.6, TorchScript too) and the
legacy stream (a magic number, the pickle, then each storage's bytes), as EdgeConnect's
published files are.
"""

from __future__ import annotations

import _compat_pickle
import io
import logging
import os
import pickle
import struct
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, BinaryIO

import torch

from inpaint_core.errors import InvalidWeightsError

__all__ = ["Placeholder", "RestrictedUnpickler", "load_pickled"]

logger = logging.getLogger(__name__)

#: The first pickle of a legacy (pre-zip) torch file, and its protocol version.
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001

_STORAGE_DTYPES: dict[str, torch.dtype] = {
    "DoubleStorage": torch.float64,
    "FloatStorage": torch.float32,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
    "ComplexFloatStorage": torch.complex64,
    "ComplexDoubleStorage": torch.complex128,
    "UntypedStorage": torch.uint8,
}
_DTYPES: dict[str, torch.dtype] = {
    name: value
    for name in (
        "float64",
        "float32",
        "float16",
        "bfloat16",
        "int64",
        "int32",
        "int16",
        "int8",
        "uint8",
        "bool",
        "complex64",
        "complex128",
    )
    if isinstance(value := getattr(torch, name), torch.dtype)
}


class Placeholder:
    """An inert stand-in for a global that a checkpoint names and this loader does not trust.

    Each distinct global gets its own subclass whose :attr:`global_name` is ``module.name``.
    Calling it, building it or filling it only records what the pickle passed:

    Attributes:
        global_name: ``"module.name"`` of the global the pickle named.
        args: positional arguments of the call (REDUCE) or ``__new__`` (NEWOBJ).
        kwargs: keyword arguments of ``__new__`` (NEWOBJ_EX).
        state: what BUILD passed (``__setstate__``), e.g. an object's attribute dict.
        items: key/value pairs set on it (SETITEMS), in order.
        list_items: values appended to it (APPEND, APPENDS).
    """

    global_name: str = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> Placeholder:
        instance = super().__new__(cls)
        instance.args = args
        instance.kwargs = kwargs
        instance.state = None
        instance.items = {}
        instance.list_items = []
        return instance

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __setitem__(self, key: Any, value: Any) -> None:
        self.items[key] = value

    def append(self, value: Any) -> None:
        """Record an appended value (pickle's APPEND)."""
        self.list_items.append(value)

    def extend(self, values: Any) -> None:
        """Record appended values (pickle's APPENDS)."""
        self.list_items.extend(values)

    def __repr__(self) -> str:
        return f"<placeholder for {self.global_name}>"


class _StorageType:
    """What a ``torch.*Storage`` global stands for: only its element dtype."""

    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype


class _Storage:
    """A storage's bytes, read now (zip) or filled in after the pickle (legacy)."""

    def __init__(self, dtype: torch.dtype, numel: int) -> None:
        self.dtype, self.numel = dtype, numel
        self.data: bytes | None = None
        self.base: _Storage | None = None  # a legacy view: (base, element offset)
        self.offset = 0


class _TensorRef:
    """A tensor to build from a storage once every storage's bytes are known."""

    def __init__(self, storage: Any, offset: int, size: Any, stride: Any) -> None:
        if not isinstance(storage, _Storage):
            raise InvalidWeightsError(
                f"a tensor is built from {type(storage).__name__}, not from a storage of the file"
            )
        self.storage, self.offset = storage, int(offset)
        self.size, self.stride = tuple(size), tuple(stride)


def _rebuild_tensor(storage: Any, offset: int, size: Any, stride: Any, *_: Any) -> _TensorRef:
    return _TensorRef(storage, offset, size, stride)


def _rebuild_parameter(data: Any, *_: Any) -> Any:
    return data  # a Parameter's tensor; requires_grad and hooks are dropped


def _encode(text: Any, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for ``bytes``: latin-1 text only."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise InvalidWeightsError(
            f"unexpected _codecs.encode({type(text).__name__}, {encoding!r}) in a checkpoint"
        )
    return text.encode("latin1")


_SAFE_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "complex"): complex,
    ("builtins", "slice"): slice,
    ("_codecs", "encode"): _encode,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch", "Size"): torch.Size,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that imports nothing: see the module docstring.

    Args:
        file: the pickle stream.
        storage: called with a persistent id's ``(dtype, key, numel)`` and returns the
            :class:`_Storage` it names (the zip and legacy layouts differ).
    """

    def __init__(self, file: BinaryIO, storage: Any) -> None:
        super().__init__(file)
        self._storage = storage
        self._placeholders: dict[str, type[Placeholder]] = {}

    def find_class(self, module: str, name: str) -> Any:
        """The safe stand-in for ``module.name``; never imports ``module``."""
        # Python 2 names in protocol < 3 pickles, mapped as pickle's own find_class does.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if (module, name) in _SAFE_GLOBALS:
            return _SAFE_GLOBALS[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        if module == "torch" and name in _DTYPES:
            return _DTYPES[name]
        full = f"{module}.{name}"
        if full not in self._placeholders:
            logger.debug("checkpoint global %s is read as an inert placeholder", full)
            self._placeholders[full] = type(
                name.rpartition(".")[2] or "Global", (Placeholder,), {"global_name": full}
            )
        return self._placeholders[full]

    def persistent_load(self, pid: Any) -> Any:
        """A storage named by the pickle: ``('storage', type, key, location, numel[, view])``."""
        if not isinstance(pid, tuple) or not pid:
            raise InvalidWeightsError(f"unexpected persistent id {pid!r} in a checkpoint")
        kind = pid[0].decode("ascii") if isinstance(pid[0], bytes) else pid[0]
        if kind == "module":  # legacy files record a module's source: never used
            return self.find_class("torch.nn", "Module")
        if kind != "storage" or len(pid) < 5 or not isinstance(pid[1], _StorageType):
            raise InvalidWeightsError(f"unexpected persistent id {pid[:2]!r} in a checkpoint")
        storage = self._storage(pid[1].dtype, str(pid[2]), int(pid[4]))
        view = pid[5] if len(pid) > 5 else None
        if view is None:
            return storage
        view_key, offset, numel = view
        sliced = self._storage(pid[1].dtype, "view:" + str(view_key), int(numel))
        sliced.base, sliced.offset = storage, int(offset)
        return sliced


def _tensor(ref: _TensorRef, path: str) -> torch.Tensor:
    storage, offset = ref.storage, ref.offset
    if storage.base is not None:
        storage, offset = storage.base, offset + storage.offset
    if storage.data is None:
        raise InvalidWeightsError(f"{path}: a storage's bytes are missing; is the file cut?")
    if storage.data:
        flat = torch.frombuffer(bytearray(storage.data), dtype=storage.dtype)
    else:
        flat = torch.empty(0, dtype=storage.dtype)
    needed = offset + 1 + sum((s - 1) * st for s, st in zip(ref.size, ref.stride, strict=True))
    if all(ref.size) and needed > flat.numel():
        raise InvalidWeightsError(
            f"{path}: a tensor of shape {ref.size} reaches past its storage of "
            f"{flat.numel()} elements; the file is damaged"
        )
    return flat.as_strided(ref.size, ref.stride, offset).clone()


def _materialise(value: Any, path: str, memo: dict[int, Any]) -> Any:
    """Replace every :class:`_TensorRef` inside ``value`` by its tensor (shared refs stay so)."""
    key = id(value)
    if key in memo:
        return memo[key]
    if isinstance(value, _TensorRef):
        out: Any = _tensor(value, path)
    elif isinstance(value, OrderedDict):
        out = OrderedDict()
        memo[key] = out
        for k, v in value.items():
            out[k] = _materialise(v, path, memo)
    elif isinstance(value, dict):
        out = {}
        memo[key] = out
        for k, v in value.items():
            out[k] = _materialise(v, path, memo)
    elif isinstance(value, list):
        out = []
        memo[key] = out
        out.extend(_materialise(v, path, memo) for v in value)
    elif isinstance(value, tuple) and not isinstance(value, torch.Size):
        out = tuple(_materialise(v, path, memo) for v in value)
    elif isinstance(value, Placeholder):
        memo[key] = value
        value.args = _materialise(value.args, path, memo)
        value.kwargs = _materialise(value.kwargs, path, memo)
        value.state = _materialise(value.state, path, memo)
        value.items = _materialise(value.items, path, memo)
        value.list_items = _materialise(value.list_items, path, memo)
        out = value
    else:
        out = value
    memo[key] = out
    return out


def _load_zip(path: Path) -> Any:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
        if not pickles:
            raise InvalidWeightsError(f"{path} is a zip file without data.pkl: not a torch file")
        prefix = pickles[0][: -len("data.pkl")]
        order = prefix + "byteorder"
        if order in names and archive.read(order).strip() != b"little":
            raise InvalidWeightsError(f"{path} stores big-endian tensors, which are not read")
        storages: dict[str, _Storage] = {}

        def storage(dtype: torch.dtype, key: str, numel: int) -> _Storage:
            if key not in storages:
                item = storages[key] = _Storage(dtype, numel)
                if not key.startswith("view:"):
                    try:
                        item.data = archive.read(f"{prefix}data/{key}")
                    except KeyError:
                        raise InvalidWeightsError(
                            f"{path} lacks the tensor data {prefix}data/{key}; is it cut?"
                        ) from None
            return storages[key]

        data = archive.read(pickles[0])
        result = RestrictedUnpickler(io.BytesIO(data), storage).load()
    return _materialise(result, str(path), {})


def _load_legacy(path: Path) -> Any:
    storages: dict[str, _Storage] = {}

    def storage(dtype: torch.dtype, key: str, numel: int) -> _Storage:
        return storages.setdefault(key, _Storage(dtype, numel))

    with open(path, "rb") as handle:
        header = RestrictedUnpickler(handle, storage)
        if header.load() != _LEGACY_MAGIC:
            raise InvalidWeightsError(f"{path} is neither a torch zip file nor a legacy one")
        if header.load() != _LEGACY_PROTOCOL:
            raise InvalidWeightsError(f"{path}: unknown legacy torch protocol version")
        header.load()  # system info: byte order and type sizes
        result = RestrictedUnpickler(handle, storage).load()
        keys = RestrictedUnpickler(handle, storage).load()
        for key in keys:
            item = storages.get(str(key))
            if item is None:
                raise InvalidWeightsError(f"{path}: storage {key!r} is listed but never used")
            (count,) = struct.unpack("<q", handle.read(8))
            size = count * torch.empty(0, dtype=item.dtype).element_size()
            item.data = handle.read(size)
            if len(item.data) != size:
                raise InvalidWeightsError(f"{path} ends inside storage {key!r}; is it cut?")
    return _materialise(result, str(path), {})


def _is_torchscript(path: Path) -> bool:
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/constants.pkl") for name in archive.namelist())


def load_pickled(path: str | os.PathLike[str]) -> Any:
    """Load a PyTorch checkpoint file without running code from it.

    Args:
        path: a ``.pth`` / ``.ckpt`` / ``.pt`` file written by ``torch.save`` (zip or legacy
            layout) or ``torch.jit.save``.

    Returns:
        The pickled object: dicts, lists, tuples, numbers, strings, CPU tensors (contiguous
        copies; ``Parameter`` s come back as plain tensors), and :class:`Placeholder`
        instances for any other object the file pickles.

    Raises:
        InvalidWeightsError: the file is missing, not a torch file, cut short or damaged.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidWeightsError(f"checkpoint file {path} does not exist")
    try:
        if zipfile.is_zipfile(path) and _is_torchscript(path):
            return _load_zip(path)
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            first_line = str(e).splitlines()[0] if str(e) else type(e).__name__
            logger.info("%s pickles more than tensors (%s): read restricted", path, first_line)
        return _load_zip(path) if zipfile.is_zipfile(path) else _load_legacy(path)
    except InvalidWeightsError:
        raise
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        KeyError,
        zipfile.BadZipFile,
        RuntimeError,
        struct.error,
    ) as e:
        raise InvalidWeightsError(f"cannot read checkpoint {path}: {e}") from e
