"""Downloading published checkpoints: progress, cancel, resume after a cut, digest check.

:func:`download` is built on pooch (the download and hash-check library scikit-image's data
uses): pooch decides whether the file is already there, checks its digest (``sha256:`` or
``md5:``), and moves it into place atomically, removing it on a mismatch. A publisher that
pins only the first hex digits of a file's sha256 (OpenMMLab ends its file names with eight)
is checked here, after pooch, with :func:`digest_prefix`. What pooch lacks is
written here as its downloader, :class:`ResumableDownloader`: the bytes go to a ``.part`` file
beside the download that survives a cut connection or a cancel, and the next attempt asks the
server for the rest with an HTTP ``Range`` request.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from inpaint_core.errors import InpaintError, InvalidWeightsError, ParameterError

__all__ = [
    "DownloadCancelledError",
    "DownloadError",
    "ResumableDownloader",
    "digest_prefix",
    "download",
]

logger = logging.getLogger(__name__)

#: ``progress(done_bytes, total_bytes)``; total is 0 when the server does not say.
Progress = Callable[[int, int], None]
_CHUNK = 1 << 16
#: (connect, read) timeouts in seconds.
_TIMEOUT = (15.0, 60.0)
#: Attempts within one call after a cut connection, each resuming from the .part file.
ATTEMPTS = 3


class DownloadError(InpaintError, OSError):
    """The download failed: offline, refused, or cut more often than it was retried."""


class DownloadCancelledError(InpaintError):
    """The caller cancelled the download; its ``.part`` file is kept for a resume."""


class ResumableDownloader:
    """A pooch downloader that resumes from ``part`` and reports progress.

    Args:
        part: the file that keeps the bytes received so far, across calls.
        progress: called with ``(done_bytes, total_bytes)`` as bytes arrive.
        cancelled: polled between chunks; True stops the download (the part is kept).
        attempts: tries within one call when the connection is cut.
    """

    def __init__(
        self,
        part: Path,
        progress: Progress | None = None,
        cancelled: Callable[[], bool] | None = None,
        attempts: int = ATTEMPTS,
    ) -> None:
        self.part = part
        self.progress = progress
        self.cancelled = cancelled
        self.attempts = attempts

    def __call__(self, url: str, output_file: Any, pooch: Any = None) -> None:
        """Download ``url`` into ``output_file`` (pooch's temporary file, a path)."""
        import requests

        for attempt in range(1, self.attempts + 1):
            before = self._have()
            try:
                self._fetch_rest(url, requests)
                break
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
            ) as e:
                have = self._have()
                if have == 0:  # nothing ever arrived: offline or unreachable, retrying is vain
                    raise DownloadError(f"cannot reach {url} ({_reason(e)})") from e
                if attempt == self.attempts or have == before:
                    raise DownloadError(
                        f"the download of {url} was cut after {have} bytes ({_reason(e)}); "
                        "run the same command again to resume it"
                    ) from e
                logger.warning("download cut at %d bytes (%s); resuming", have, _reason(e))
                time.sleep(min(2.0 ** (attempt - 1), 4.0) * 0.25)
        os.replace(self.part, output_file)

    def _have(self) -> int:
        return self.part.stat().st_size if self.part.exists() else 0

    def _fetch_rest(self, url: str, requests: Any) -> None:
        have = self._have()
        headers = {"Range": f"bytes={have}-"} if have else {}
        with requests.get(url, headers=headers, stream=True, timeout=_TIMEOUT) as response:
            if have and response.status_code == 416:  # the part already holds everything
                return
            if response.status_code >= 400:
                raise DownloadError(f"{url} answered HTTP {response.status_code}")
            if have and response.status_code != 206:  # no range support: start again
                logger.info("%s ignores ranges; downloading from the start", url)
                have = 0
            length = int(response.headers.get("Content-Length") or 0)
            total = have + length if length else 0
            with open(self.part, "ab" if have else "wb") as handle:
                done = have
                self._report(done, total)
                for chunk in response.iter_content(_CHUNK):
                    if self.cancelled is not None and self.cancelled():
                        raise DownloadCancelledError(
                            f"download of {url} cancelled at {done} bytes; fetching it again "
                            "resumes there"
                        )
                    handle.write(chunk)
                    done += len(chunk)
                    self._report(done, total)
            if length and done < total:
                raise requests.ConnectionError(f"connection closed at {done} of {total} bytes")

    def _report(self, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(done, total)


def _reason(error: Exception) -> str:
    text = str(error)
    return text.splitlines()[0][:200] if text else type(error).__name__


def download(
    url: str,
    target: Path,
    digest: str | None,
    *,
    progress: Progress | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> Path:
    """Download ``url`` to ``target`` unless a file with the right digest is already there.

    Args:
        url: an HTTP(S) URL.
        target: the file to create; its folder is made if needed. A cut download leaves
            ``target.part`` beside it, which the next call resumes.
        digest: ``"sha256:HEX"`` or ``"md5:HEX"`` to check, or None to accept any content.
            A ``sha256`` HEX shorter than 64 digits is a prefix the file's sha256 must start
            with.
        progress: ``progress(done_bytes, total_bytes)`` as bytes arrive.
        cancelled: polled between chunks; True stops with :class:`DownloadCancelledError`.

    Returns:
        ``target``.

    Raises:
        DownloadError: offline, an HTTP error, or cut more often than retried.
        DownloadCancelledError: ``cancelled()`` said so.
        InvalidWeightsError: the digest does not match; the download is removed.
    """
    import pooch

    prefix = digest_prefix(digest)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    downloader = ResumableDownloader(part, progress, cancelled)
    try:
        pooch.retrieve(
            url,
            known_hash=None if prefix else digest,
            fname=target.name,
            path=target.parent,
            downloader=downloader,
            progressbar=False,
        )
    except ValueError as e:
        if "hash" not in str(e).lower():
            raise
        raise InvalidWeightsError(
            f"the download of {url} does not match the published digest {digest}; it was "
            f"removed ({_reason(e)})"
        ) from e
    if prefix:
        from inpaint_core.checkpoint import sha256_file

        actual = sha256_file(target)
        if not actual.startswith(prefix):
            target.unlink()
            raise InvalidWeightsError(
                f"the download of {url} does not match the published digest {digest}; it was "
                f"removed (its sha256 is {actual})"
            )
    return target


def digest_prefix(digest: str | None) -> str | None:
    """The lower-case hex prefix of a ``"sha256:HEX"`` digest shorter than 64 digits, else None.

    Raises:
        ParameterError: a ``sha256`` digest whose HEX is empty, not hexadecimal, or longer
            than 64 digits.
    """
    if not digest or not digest.lower().startswith("sha256:"):
        return None
    hex_digits = digest.split(":", 1)[1].strip().lower()
    if not 0 < len(hex_digits) <= 64 or set(hex_digits) - set("0123456789abcdef"):
        raise ParameterError(f"digest {digest!r} is not sha256:HEX with 1 to 64 hex digits")
    return hex_digits if len(hex_digits) < 64 else None
