"""Published weights: the catalogue, download, safe loading and conversion of checkpoints.

The same API as ``inpaint weights``::

    from inpaint_core import weights

    weights.catalogue()                                     # the known published checkpoints
    weights.fetch("big-lama")                               # download, check, convert, install
    weights.import_weights("lama", "big-lama", "w.safetensors")   # a checkpoint you have
    weights.weights_info("w.safetensors")                   # method, config, source, licence
    weights.resolve_weights("big-lama", method="lama")      # what --weights NAME|FILE means

Nothing here runs code from a downloaded file (:mod:`~inpaint_core.weights.pickles`).
"""

from __future__ import annotations

import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inpaint_core.errors import InvalidWeightsError, MissingWeightsError, ParameterError
from inpaint_core.weights.download import (
    DownloadCancelledError,
    DownloadError,
    Progress,
    download,
)
from inpaint_core.weights.formats import format_method, format_names, get_format
from inpaint_core.weights.published import (
    HOME_ENV,
    CatalogueEntry,
    catalogue,
    downloads_folder,
    get_entry,
    inpaint_home,
    installed_path,
    weights_folder,
)

__all__ = [
    "HOME_ENV",
    "PUBLISHED_SUFFIXES",
    "CatalogueEntry",
    "DownloadCancelledError",
    "DownloadError",
    "FetchResult",
    "catalogue",
    "fetch",
    "format_names",
    "get_entry",
    "get_format",
    "import_weights",
    "inpaint_home",
    "installed_path",
    "resolve_weights",
    "weights_folder",
    "weights_info",
]

#: Suffixes of published (pickled) checkpoints: never loaded directly, always imported.
PUBLISHED_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".pkl", ".zip")


@dataclass(frozen=True)
class FetchResult:
    """What :func:`fetch` did.

    Attributes:
        entry: the catalogue entry.
        path: the installed ``.safetensors`` file.
        sha256: the download's sha256 (recorded in the sidecar).
        installed_before: True when nothing was done because it was already installed.
    """

    entry: CatalogueEntry
    path: Path
    sha256: str
    installed_before: bool


def import_hint(entry: CatalogueEntry, downloaded: str | None = None) -> str:
    """The ``inpaint weights import`` command that installs ``entry`` from a download."""
    where = downloaded or ("FOLDER" if entry.archive else "FILE")
    if entry.archive:
        where += f"/{entry.member}" if downloaded else f" (the {entry.member!r} folder unzipped)"
    return f"inpaint weights import {entry.format} {where} --output {installed_path(entry.name)}"


def import_weights(
    format_name: str,
    path: str | Path,
    output: str | Path,
    *,
    overwrite: bool = False,
    provenance: dict[str, Any] | None = None,
) -> Path:
    """Convert a published checkpoint into this project's weights.

    Args:
        format_name: a name from :func:`format_names`, e.g. ``"lama"``.
        path: the checkpoint as its publisher lays it out (a file or a folder).
        output: the ``NAME.safetensors`` to write (its ``NAME.json`` sidecar goes beside it).
        overwrite: replace an existing output; otherwise it is an error.
        provenance: more to record in the sidecar's ``extra["published"]`` (URL, licence...).

    Returns:
        The ``.safetensors`` path written.

    Raises:
        ParameterError: an unknown format, or an output that is not ``.safetensors``.
        InvalidWeightsError: the checkpoint does not fit the format (the first mismatching
            keys are named).
        OutputExistsError: ``output`` exists and ``overwrite`` is false.
    """
    from inpaint_core.checkpoint import flatten_state, save_checkpoint

    fmt = get_format(format_name)
    output = Path(output)
    if output.suffix != ".safetensors":
        raise ParameterError(
            f"--output {output} must end in .safetensors (its .json sidecar goes beside it)"
        )
    source = Path(path).expanduser()
    if not source.exists():
        raise InvalidWeightsError(
            f"{source} does not exist; format {fmt.name!r} expects {fmt.expects}"
        )
    converted = fmt.convert(source)
    published = {
        "format": fmt.name,
        "reference": fmt.reference,
        "source": str(source.resolve()),
        **converted.source,
        **(provenance or {}),
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(
        output,
        flatten_state(converted.networks),
        method=converted.method,
        config=converted.config,
        step=int(converted.source.get("iteration", converted.source.get("global_step", 0)) or 0),
        training_data={"published": published.get("training_data", "as published")},
        extra={"published": published},
        overwrite=overwrite,
    )
    return output


def fetch(
    name: str,
    *,
    progress: Progress | None = None,
    cancelled: Callable[[], bool] | None = None,
    force: bool = False,
) -> FetchResult:
    """Download catalogue entry ``name``, check its digest, convert and install it.

    The download is kept in :func:`~inpaint_core.weights.published.downloads_folder` (a cut
    one as ``.part``, resumed by the next call); the weights go to
    :func:`~inpaint_core.weights.published.installed_path`. Show the entry's licence to the
    user before calling this.

    Args:
        name: a catalogue name, e.g. ``"big-lama"``.
        progress: ``progress(done_bytes, total_bytes)`` during the download.
        cancelled: polled during the download; True stops it (resumable).
        force: download and convert again even when installed.

    Raises:
        DownloadError: offline or refused; the message gives the URL and the ``import``
            command for a download by hand.
        DownloadCancelledError: cancelled.
        InvalidWeightsError: a digest mismatch (the download is removed) or a download that
            does not fit its format.
    """
    from inpaint_core.checkpoint import read_checkpoint_info, sha256_file

    entry = get_entry(name)
    target = installed_path(name)
    if target.is_file() and not force:
        info = read_checkpoint_info(target, expected_method=entry.method, verify=False)
        sha = info.extra.get("published", {}).get("download_sha256", "")
        return FetchResult(entry, target, sha, installed_before=True)
    file_name = entry.url.rstrip("/").rsplit("/", 1)[-1].split("?")[0] or entry.name
    if entry.archive and not file_name.endswith("." + entry.archive):
        file_name = f"{entry.name}.{entry.archive}"
    downloaded = downloads_folder() / file_name
    try:
        download(entry.url, downloaded, entry.digest, progress=progress, cancelled=cancelled)
    except DownloadError as e:
        raise DownloadError(
            f"{e}. Download it by hand from {entry.url} (or via {entry.page}), then run: "
            f"{import_hint(entry)}"
        ) from e
    sha = sha256_file(downloaded)
    provenance = {
        "catalogue": entry.name,
        "url": entry.url,
        "licence": entry.licence,
        "training_data": entry.training_data,
        "download_sha256": sha,
        "pinned_digest": entry.digest,
    }
    with tempfile.TemporaryDirectory(dir=downloaded.parent, prefix=".unpack-") as scratch:
        source = _unpacked(entry, downloaded, Path(scratch))
        import_weights(entry.format, source, target, overwrite=force, provenance=provenance)
    return FetchResult(entry, target, sha, installed_before=False)


def _unpacked(entry: CatalogueEntry, downloaded: Path, scratch: Path) -> Path:
    """The path the entry's format converts: the download itself, or a member unzipped."""
    if entry.archive is None:
        return downloaded
    if entry.archive != "zip":
        raise ParameterError(f"catalogue entry {entry.name!r}: unknown archive {entry.archive!r}")
    try:
        with zipfile.ZipFile(downloaded) as archive:
            root = scratch.resolve()
            for member in archive.namelist():
                if not (root / member).resolve().is_relative_to(root):
                    raise InvalidWeightsError(f"{downloaded}: member {member!r} leaves the folder")
            archive.extractall(scratch)
    except zipfile.BadZipFile as e:
        raise InvalidWeightsError(f"{downloaded} is not a valid zip archive: {e}") from e
    found = sorted(p for p in scratch.rglob(entry.member) if not p.name.startswith("."))
    if not found:
        raise InvalidWeightsError(
            f"{downloaded} holds no {entry.member!r}; expected the publisher's layout "
            f"({get_format(entry.format).expects})"
        )
    return min(found, key=lambda p: len(p.parts))


def weights_info(path: str | Path, *, verify: bool = True) -> dict[str, Any]:
    """What a ``.safetensors`` checkpoint is: method, architecture config, source, licence.

    Args:
        path: ``NAME.safetensors`` (or its ``NAME.json`` sidecar), or a catalogue name.
        verify: hash the ``.safetensors`` file and check it against the sidecar (reads the
            whole file); False reads the sidecar alone.

    Returns:
        A JSON-ready dict: ``method``, ``config``, ``source`` (the published format, URL and
        file, or ``"trained here"``), ``licence``, ``sha256`` (of the ``.safetensors`` file,
        checked against the sidecar), ``step``, ``created``, ``path``.
    """
    from inpaint_core.checkpoint import checkpoint_paths, read_checkpoint_info

    given = Path(path)
    if given.suffix not in (".safetensors", ".json") and not given.exists():
        entries = {entry.name for entry in catalogue()}
        if str(path) in entries:
            given = installed_path(str(path))
    weights, _ = checkpoint_paths(given)
    info = read_checkpoint_info(weights, verify=verify)  # loads no tensor
    published = info.extra.get("published")
    return {
        "path": str(weights),
        "method": info.method,
        "config": info.config,
        "source": published if published else "trained here (inpaint train)",
        "licence": (published or {}).get("licence", info.extra.get("licence", "not recorded")),
        "sha256": info.sha256,
        "step": info.step,
        "created": info.created,
    }


def resolve_weights(value: str | Path, method: str) -> Path:
    """What ``--weights VALUE`` names for ``method``: a catalogue name or a weights file.

    Args:
        value: a catalogue name (``big-lama``) or a path to ``NAME.safetensors``.
        method: the method that will load it.

    Returns:
        The ``.safetensors`` path (not checked for existence when it is a path).

    Raises:
        MissingWeightsError: a catalogue name that is not installed (says how to fetch it).
        ParameterError: a catalogue entry of another method, or a published checkpoint
            (``.pt``, ``.pth``, ``.ckpt``, a folder) that must be imported first.
    """
    text = str(value)
    names = {entry.name: entry for entry in catalogue()}
    if text in names and not Path(text).exists():
        entry = names[text]
        if entry.method != method:
            raise ParameterError(
                f"weights {text!r} are for method {entry.method!r}, not {method!r}; "
                f"run -m {entry.method} --weights {text}"
            )
        path = installed_path(text)
        if not path.is_file():
            raise MissingWeightsError(
                f"weights {text!r} are not installed (looked in {path.parent}); run "
                f"`inpaint weights fetch {text}` (licence: {entry.licence})"
            )
        return path
    path = Path(text).expanduser()
    if path.suffix.lower() in PUBLISHED_SUFFIXES or path.is_dir():
        formats = [n for n in format_names() if format_method(n) == method] or format_names()
        raise ParameterError(
            f"{path} is a published checkpoint, not converted weights: run `inpaint weights "
            f"import {'|'.join(formats)} {path} --output {path.stem}.safetensors` and pass "
            f"--weights {path.stem}.safetensors"
        )
    return path
