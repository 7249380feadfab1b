"""Checkpoints of trained networks: a ``NAME.safetensors`` file and a ``NAME.json`` sidecar.

The tensors are stored with safetensors (never pickle). The sidecar is a
:class:`CheckpointInfo`: the method, its architecture config, the training step and data, the
last losses, the hardware, and the sha256 of the ``.safetensors`` file, which
:func:`load_checkpoint` checks before trusting the weights.

Both files are written to temporary siblings and moved into place with :func:`os.replace`, the
sidecar last, so a crash never leaves a half-written file under the final name. Optimiser states
are not saved here; the trainer keeps those separately.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from safetensors import SafetensorError
from torch import Tensor

from inpaint_core.errors import (
    InvalidWeightsError,
    MissingWeightsError,
    OutputExistsError,
    ParameterError,
)
from inpaint_core.io.atomic import temporary_sibling

__all__ = [
    "CHECKPOINT_DTYPES",
    "SIDECAR_SUFFIX",
    "WEIGHTS_SUFFIX",
    "CheckpointInfo",
    "checkpoint_paths",
    "describe_hardware",
    "flatten_state",
    "load_checkpoint",
    "read_checkpoint_info",
    "save_checkpoint",
    "sha256_file",
    "software_version",
    "unflatten_state",
]

logger = logging.getLogger(__name__)

WEIGHTS_SUFFIX = ".safetensors"
SIDECAR_SUFFIX = ".json"
#: Storage dtypes of floating tensors: float32 by default, float16 for compact shipped weights.
CHECKPOINT_DTYPES: tuple[str, ...] = ("float32", "float16")
_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint holds and how it was made; the content of the ``.json`` sidecar.

    Attributes:
        method: registered method name the weights belong to, e.g. ``"glcic"``.
        config: the architecture config (JSON-ready) that rebuilds the networks.
        step: training step (iteration) at which the checkpoint was taken.
        created: ISO-8601 UTC time of saving.
        software_version: version of napari-inpaint that saved it.
        training_data: free description of the data (source folder or scan, sizes, masks).
        losses: last running loss values, by name.
        hardware: device name and torch version.
        wall_seconds: training wall-clock time so far, in seconds.
        sha256: hex digest of the ``.safetensors`` file.
        dtype: storage dtype of the floating tensors, one of :data:`CHECKPOINT_DTYPES`.
        extra: anything else the caller wants to keep.
    """

    method: str
    config: dict[str, Any]
    step: int
    created: str
    software_version: str
    training_data: dict[str, Any]
    losses: dict[str, float]
    hardware: dict[str, Any]
    wall_seconds: float
    sha256: str
    dtype: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """The sidecar text: one JSON object with every field."""
        try:
            return json.dumps(dataclasses.asdict(self), indent=2)
        except (TypeError, ValueError) as e:
            raise ParameterError(
                f"checkpoint metadata for method {self.method!r} is not JSON-ready: {e}; "
                "pass only dicts, lists, strings, numbers, booleans and None"
            ) from e

    @classmethod
    def from_json(cls, text: str) -> CheckpointInfo:
        """Parse a sidecar written by :meth:`to_json`; unknown keys are ignored."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise InvalidWeightsError(f"checkpoint sidecar is not valid JSON: {e}") from e
        if not isinstance(data, dict):
            raise InvalidWeightsError(
                f"checkpoint sidecar holds a JSON {type(data).__name__}, not an object"
            )
        names = [f.name for f in dataclasses.fields(cls)]
        required = [f.name for f in dataclasses.fields(cls) if f.name != "extra"]
        missing = [name for name in required if name not in data]
        if missing:
            raise InvalidWeightsError(
                f"checkpoint sidecar lacks the fields {missing}; re-save the checkpoint with "
                "save_checkpoint"
            )
        unknown = sorted(set(data) - set(names))
        if unknown:
            logger.debug("ignoring unknown checkpoint sidecar fields %s", unknown)
        return cls(**{name: data[name] for name in names if name in data})


def _umask() -> int:
    """The process umask (read by setting it and restoring it at once)."""
    current = os.umask(0o022)
    os.umask(current)
    return current


def software_version() -> str:
    """The installed napari-inpaint version, or ``"0+unknown"`` when it is not installed."""
    from inpaint_core import __version__

    return __version__


def describe_hardware(device: str | torch.device | None = None) -> dict[str, str]:
    """Device type and name plus the torch version, for :attr:`CheckpointInfo.hardware`."""
    device = torch.device(device if device is not None else "cpu")
    if device.type == "cuda" and torch.cuda.is_available():
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine() or "unknown"
    return {"device": str(device), "device_name": name, "torch": torch.__version__}


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks so large weights never sit in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def checkpoint_paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """``(NAME.safetensors, NAME.json)`` for the weights path, the sidecar path or the stem."""
    path = Path(path)
    stem = path.name
    for suffix in (WEIGHTS_SUFFIX, SIDECAR_SUFFIX):
        if stem.endswith(suffix) and len(stem) > len(suffix):
            stem = stem[: -len(suffix)]
            break
    return path.with_name(stem + WEIGHTS_SUFFIX), path.with_name(stem + SIDECAR_SUFFIX)


def flatten_state(states: Mapping[str, Mapping[str, Tensor]]) -> dict[str, Tensor]:
    """Merge the state dicts of several networks: ``{"generator": {"conv.weight": t}}`` becomes
    ``{"generator.conv.weight": t}``. Network names must be non-empty and contain no dot."""
    flat: dict[str, Tensor] = {}
    for network, state in states.items():
        if not isinstance(network, str) or not network or "." in network:
            raise ParameterError(
                f"network name {network!r} must be a non-empty string without '.', "
                "for example 'generator' or 'discriminator'"
            )
        for key, tensor in state.items():
            flat[f"{network}.{key}"] = tensor
    return flat


def unflatten_state(tensors: Mapping[str, Tensor]) -> dict[str, dict[str, Tensor]]:
    """Inverse of :func:`flatten_state`: split each key at its first dot."""
    states: dict[str, dict[str, Tensor]] = {}
    for key, tensor in tensors.items():
        network, dot, rest = key.partition(".")
        if not dot or not network or not rest:
            raise InvalidWeightsError(
                f"tensor key {key!r} is not of the form 'network.parameter'; was the checkpoint "
                "saved from flatten_state(...)?"
            )
        states.setdefault(network, {})[rest] = tensor
    return states


def _prepare_tensors(tensors: Mapping[str, Tensor], half: bool) -> dict[str, Tensor]:
    """CPU, contiguous, unshared copies; floating tensors as float16 or float32."""
    target = torch.float16 if half else torch.float32
    prepared: dict[str, Tensor] = {}
    for key, tensor in tensors.items():
        if not isinstance(key, str) or not isinstance(tensor, Tensor):
            raise ParameterError(
                f"checkpoint entry {key!r} is a {type(tensor).__name__}; save_checkpoint takes "
                "a flat dict of str -> Tensor (use flatten_state for several networks)"
            )
        # clone() so tied weights are stored twice: safetensors refuses shared storage.
        out = tensor.detach().to("cpu").clone().contiguous()
        if out.is_floating_point() and out.dtype != target:
            converted = out.to(target)
            if half and not bool(torch.isfinite(converted).eq(torch.isfinite(out)).all()):
                raise ParameterError(
                    f"tensor {key!r} has values beyond the float16 range (max |x| = "
                    f"{out.abs().max().item():.4g} > 65504); save it with half=False"
                )
            out = converted
        prepared[key] = out
    return prepared


def save_checkpoint(
    path: str | os.PathLike[str],
    tensors: Mapping[str, Tensor],
    *,
    method: str,
    config: Mapping[str, Any],
    step: int,
    training_data: Mapping[str, Any] | None = None,
    losses: Mapping[str, float] | None = None,
    hardware: Mapping[str, Any] | None = None,
    wall_seconds: float = 0.0,
    extra: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    half: bool = False,
) -> CheckpointInfo:
    """Write ``tensors`` and their metadata as ``NAME.safetensors`` + ``NAME.json``.

    Args:
        path: the checkpoint, as ``NAME``, ``NAME.safetensors`` or ``NAME.json``.
        tensors: a flat state dict; use :func:`flatten_state` for several networks.
        method, config, step, training_data, losses, wall_seconds, extra: the
            :class:`CheckpointInfo` fields of the same names.
        hardware: defaults to :func:`describe_hardware` of the first tensor's device.
        overwrite: replace an existing checkpoint; otherwise refuse.
        half: store floating tensors as float16 (about half the size); else float32.

    Returns:
        The :class:`CheckpointInfo` written to the sidecar, with ``sha256`` and ``created``.

    Raises:
        OutputExistsError: either file exists and ``overwrite`` is False.
        ParameterError: a non-tensor entry, metadata that is not JSON-ready, or a value
            too large for float16.
    """
    weights_path, sidecar_path = checkpoint_paths(path)
    if not overwrite:
        existing = [str(p) for p in (weights_path, sidecar_path) if p.exists()]
        if existing:
            raise OutputExistsError(
                f"checkpoint {' and '.join(existing)} already exists; choose another name or "
                "pass overwrite=True to replace it"
            )
    if not weights_path.parent.is_dir():
        raise MissingWeightsError(
            f"cannot save checkpoint {weights_path}: folder {weights_path.parent} does not "
            "exist; create it first"
        )
    if hardware is None:
        first = next(iter(tensors.values()), None)
        hardware = describe_hardware(first.device if isinstance(first, Tensor) else None)
    info = CheckpointInfo(
        method=method,
        config=dict(config),
        step=int(step),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        software_version=software_version(),
        training_data=dict(training_data or {}),
        losses={name: float(value) for name, value in (losses or {}).items()},
        hardware=dict(hardware),
        wall_seconds=float(wall_seconds),
        sha256="",
        dtype="float16" if half else "float32",
        extra=dict(extra or {}),
    )
    info.to_json()  # fail on non-JSON metadata before anything is written
    prepared = _prepare_tensors(tensors, half)

    temporaries: list[Path] = []
    try:
        weights_tmp = temporary_sibling(weights_path)
        temporaries.append(weights_tmp)
        safetensors.torch.save_file(prepared, str(weights_tmp))
        # safetensors creates the file private (0600); give it the usual umask-based mode.
        os.chmod(weights_tmp, 0o666 & ~_umask())
        info = dataclasses.replace(info, sha256=sha256_file(weights_tmp))
        sidecar_tmp = temporary_sibling(sidecar_path)
        temporaries.append(sidecar_tmp)
        sidecar_tmp.write_text(info.to_json() + "\n", encoding="utf-8")
        # Weights first, sidecar last: a sidecar always names the weights it describes.
        os.replace(weights_tmp, weights_path)
        os.replace(sidecar_tmp, sidecar_path)
    finally:
        for temporary in temporaries:
            temporary.unlink(missing_ok=True)
    logger.info("saved checkpoint %s (method %s, step %d)", weights_path, method, info.step)
    return info


def read_checkpoint_info(
    path: str | os.PathLike[str],
    *,
    expected_method: str | None = None,
    verify: bool = True,
) -> CheckpointInfo:
    """The sidecar of a checkpoint written by :func:`save_checkpoint`, without its tensors.

    Args:
        path: ``NAME``, ``NAME.safetensors`` or ``NAME.json``.
        expected_method: refuse a checkpoint of another method when given.
        verify: check the sha256 of the ``.safetensors`` file against the sidecar.

    Raises:
        MissingWeightsError: the ``.safetensors`` file does not exist.
        InvalidWeightsError: no or bad sidecar, hash mismatch, other method.
    """
    weights_path, sidecar_path = checkpoint_paths(path)
    if not weights_path.is_file():
        raise MissingWeightsError(f"checkpoint weights {weights_path} do not exist")
    if not sidecar_path.is_file():
        raise InvalidWeightsError(
            f"checkpoint {weights_path} has no sidecar: {sidecar_path} is needed (it holds the "
            "method, config and sha256); re-save the weights with save_checkpoint"
        )
    info = CheckpointInfo.from_json(sidecar_path.read_text(encoding="utf-8"))
    if expected_method is not None and info.method != expected_method:
        raise InvalidWeightsError(
            f"checkpoint {weights_path} is for method {info.method!r}, not {expected_method!r}"
        )
    if verify:
        found = sha256_file(weights_path)
        if found != info.sha256:
            raise InvalidWeightsError(
                f"checkpoint {weights_path} is corrupt or was changed: sha256 expected "
                f"{info.sha256} (from {sidecar_path.name}), found {found}; re-download or "
                "re-save it, or pass verify=False to load it anyway"
            )
    return info


def load_checkpoint(
    path: str | os.PathLike[str],
    *,
    expected_method: str | None = None,
    map_location: str | torch.device = "cpu",
    verify: bool = True,
) -> tuple[dict[str, Tensor], CheckpointInfo]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Args:
        path: ``NAME``, ``NAME.safetensors`` or ``NAME.json``.
        expected_method: refuse a checkpoint of another method when given.
        map_location: device the tensors are loaded onto.
        verify: check the sha256 of the ``.safetensors`` file against the sidecar.

    Returns:
        ``(tensors, info)``; floating tensors stored as float16 come back as float32.

    Raises:
        MissingWeightsError: the ``.safetensors`` file does not exist.
        InvalidWeightsError: no or bad sidecar, hash mismatch, other method, unreadable file.
    """
    weights_path, _ = checkpoint_paths(path)
    info = read_checkpoint_info(path, expected_method=expected_method, verify=verify)
    try:
        tensors = safetensors.torch.load_file(str(weights_path), device=str(map_location))
    except (SafetensorError, OSError, RuntimeError, ValueError) as e:
        raise InvalidWeightsError(f"cannot read checkpoint weights {weights_path}: {e}") from e
    for key, tensor in tensors.items():
        if tensor.dtype == torch.float16:
            tensors[key] = tensor.float()
    return tensors, info
