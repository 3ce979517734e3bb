"""Fetch one artefact from its mirrors: resumable, verified, atomic; pooch does the orchestration.

``pooch.retrieve`` downloads into a temporary file beside the target, checks the sha256 and renames it into
place, so the target is never half written and a file with the wrong checksum never stays. Two downloaders
plug into pooch's documented downloader hook (``downloader(url, output_file, pooch)``):

- :class:`ResumingHTTPDownloader`: streams into ``<target>.part`` and, after a broken connection, a timeout
  or a killed job, continues it with an HTTP ``Range`` request; retries with back-off; a tqdm progress bar.
- :class:`LocalCopy`: a ``file://`` URL or a plain path (an institute's copy, offline use).

:func:`fetch` tries the mirrors in order. A file that fails its checksum, its size or the caller's content
check is deleted and the next mirror is tried; when none gives a good file the error lists every URL with
what went wrong, and what to do (another mirror, or the manual steps).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlparse

from glora.atomic import sha256 as file_sha256
from glora.data.prepare.sources import Artefact, PrepareError, Registry, Sources

log = logging.getLogger(__name__)
CHUNK = 1 << 20  # reading local files
NET_CHUNK = 1 << 16  # each network read is written at once: a killed job loses at most this much
MAX_BACKOFF_S = 30


class _Incomplete(Exception):
    """The server closed the response before the announced length: resume it."""


def _progress(total: int | None, initial: int, name: str, quiet: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=name,
                disable=quiet or not sys.stderr.isatty(), leave=False)


def _hash_prefix(path: Path) -> hashlib._Hash:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest


class ResumingHTTPDownloader:
    """A pooch downloader that resumes ``partial`` by HTTP Range; ``sha256`` holds the digest when done.

    ``timeout_s`` bounds the wait for a connection and between bytes; ``retries`` further attempts follow a
    network error or a 5xx/429 answer (each continues where the last stopped), with 1, 2, 4... s of back-off.
    Other 4xx answers (404: gone) are final.
    """

    def __init__(self, partial: Path, *, timeout_s: float, retries: int, size: int | None = None,
                 quiet: bool = False):
        self.partial = Path(partial)
        self.timeout_s = timeout_s
        self.retries = retries
        self.size = size
        self.quiet = quiet
        self.sha256: str | None = None
        self.requests: list[dict] = []  # what was asked and answered (the report, and the tests)

    def __call__(self, url: str, output_file: str, pooch, check_only: bool = False):
        import requests
        import urllib3

        for attempt in range(self.retries + 1):
            try:
                digest = self._stream(url)
                break
            except requests.HTTPError as err:
                status = err.response.status_code if err.response is not None else None
                if (status is not None and status < 500 and status != 429) or attempt == self.retries:
                    raise
                reason = f"HTTP {status}"
            except (requests.RequestException, urllib3.exceptions.HTTPError, _Incomplete, OSError) as err:
                if attempt == self.retries:
                    raise
                reason = f"{type(err).__name__}: {err}"
            wait = min(2 ** attempt, MAX_BACKOFF_S)
            log.warning("%s: %s; resuming in %d s (attempt %d of %d)", url, reason, wait, attempt + 2,
                        self.retries + 1)
            time.sleep(wait)
        self.sha256 = digest.hexdigest()
        os.replace(self.partial, output_file)  # same folder as pooch's temporary file: a rename
        self._origin.unlink(missing_ok=True)

    @property
    def _origin(self) -> Path:
        """Beside the partial download: the URL it came from (a partial from another mirror is not continued)."""
        return self.partial.with_name(self.partial.name + ".url")

    def _stream(self, url: str):
        import requests

        offset = self.partial.stat().st_size if self.partial.is_file() else 0
        if offset and (not self._origin.is_file() or self._origin.read_text() != url):
            offset = 0
        if not offset:
            self.partial.parent.mkdir(parents=True, exist_ok=True)
            self._origin.write_text(url)
        headers = {"Accept-Encoding": "identity", "User-Agent": "glora-prepare (pooch)"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        with requests.get(url, headers=headers, stream=True, timeout=(self.timeout_s, self.timeout_s)) as response:
            self.requests.append({"url": url, "range": headers.get("Range"), "status": response.status_code})
            if response.status_code == 416 and offset:  # nothing after offset: whole already, or a stale part
                total = response.headers.get("Content-Range", "").rpartition("/")[2]
                if total.isdigit() and int(total) == offset:
                    return _hash_prefix(self.partial)
                self.partial.unlink()
                raise _Incomplete(f"the partial download ({offset} bytes) does not fit the file; starting again")
            response.raise_for_status()
            if offset and response.status_code == 206:
                start = response.headers.get("Content-Range", "").removeprefix("bytes ").partition("-")[0]
                if start != str(offset):
                    offset = 0  # a range we did not ask for: start again
            elif offset:
                offset = 0  # the server ignored the range: the whole file follows
            length = response.headers.get("Content-Length")
            expected = offset + int(length) if length and length.isdigit() else self.size
            digest = _hash_prefix(self.partial) if offset else hashlib.sha256()
            with open(self.partial, "ab" if offset else "wb") as out, \
                    _progress(expected, offset, Path(urlparse(url).path).name, self.quiet) as bar:
                for chunk in response.raw.stream(NET_CHUNK, decode_content=False):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
            got = self.partial.stat().st_size
            if length and length.isdigit() and got != offset + int(length):
                raise _Incomplete(f"{got} of {offset + int(length)} bytes")
            return digest


class LocalCopy:
    """A pooch downloader for a ``file://`` URL or a local path: a copy (streamed through the digest)."""

    def __init__(self, partial: Path, *, quiet: bool = False):
        self.partial = Path(partial)
        self.quiet = quiet
        self.sha256: str | None = None
        self.requests: list[dict] = []

    def __call__(self, url: str, output_file: str, pooch, check_only: bool = False):
        source = local_path(url)
        if not source.is_file():
            raise FileNotFoundError(f"no such file: {source}")
        digest = hashlib.sha256()
        with open(source, "rb") as src, open(self.partial, "wb") as out, \
                _progress(source.stat().st_size, 0, source.name, self.quiet) as bar:
            while chunk := src.read(CHUNK):
                out.write(chunk)
                digest.update(chunk)
                bar.update(len(chunk))
        self.sha256 = digest.hexdigest()
        os.replace(self.partial, output_file)
        self.partial.with_name(self.partial.name + ".url").unlink(missing_ok=True)  # an HTTP mirror's leftover


def local_path(url: str) -> Path | None:
    """The file a ``file://`` URL or a plain path names; ``None`` for an http(s) URL."""
    parsed = urlparse(url)
    if parsed.scheme in ("http", "https"):
        return None
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "" or len(parsed.scheme) == 1:  # a path (or a Windows drive letter)
        return Path(url).expanduser()
    raise PrepareError(f"mirror {url}: unsupported scheme {parsed.scheme!r}; use https://, http://, file:// or a "
                       f"local path")


def _reason(err: BaseException, timeout_s: float, retries: int) -> str:
    """One line on why a mirror failed."""
    import requests

    if isinstance(err, requests.HTTPError) and err.response is not None:
        return f"HTTP {err.response.status_code} {err.response.reason}"
    text = f"{type(err).__name__}: {err}"
    if "timed out" in text.lower() or isinstance(err, (requests.Timeout, TimeoutError)):
        return f"no answer within {timeout_s:g} s ({retries} retries)"
    if isinstance(err, requests.ConnectionError):
        return f"cannot connect ({retries} retries): {err}"
    return text


def fetch(artefact: Artefact, dest: str | Path, registry: Registry, sources: Sources, *,
          verify: Callable[[Path], object] | None = None, quiet: bool = False) -> dict:
    """``artefact`` at ``dest``, verified; its registry record plus ``status`` (``present`` or ``downloaded``).

    A file already at ``dest`` is kept when it has the known sha256 (pinned in the sources file, else recorded
    in the registry) and passes ``verify``; otherwise the mirrors are tried in order. ``verify(path)`` raises a
    ``ValueError`` for a file with the right bytes count but the wrong content (an archive missing tasks, a
    checkpoint of another architecture): the file is deleted and the next mirror tried.
    """
    import pooch
    import requests
    import urllib3

    dest = Path(dest)
    known = artefact.sha256 or registry.sha256(artefact.id)
    where = (f"pinned in {sources.path} ({artefact.key}.sha256)" if artefact.sha256 else
             f"recorded on the first download in {registry.path}" if known else "")
    if dest.is_file():
        digest = file_sha256(dest)
        if known is None or digest == known:
            try:
                if verify is not None:
                    verify(dest)
                return {**registry.record(artefact, digest, dest.stat().st_size, None), "status": "present"}
            except ValueError as err:
                log.warning("%s: %s; fetching it again", dest, err)
        else:
            log.warning("%s: sha256 %s is not the one %s (%s); fetching it again", dest, digest, where, known)
        dest.unlink()
    failures = []
    partial = dest.with_name(dest.name + ".part")
    pooch.get_logger().setLevel(logging.WARNING)  # its hints name pooch's API; this module logs what happens
    for url in artefact.urls:
        log.info("%s: fetching %s from %s%s", artefact.id, dest, url,
                 f" (resuming at {partial.stat().st_size} bytes)" if partial.is_file() else "")
        source = local_path(url)
        downloader = (LocalCopy(partial, quiet=quiet) if source is not None else
                      ResumingHTTPDownloader(partial, timeout_s=sources.timeout_s, retries=sources.retries,
                                             size=artefact.size, quiet=quiet))
        started = time.monotonic()
        try:
            pooch.retrieve(url, known_hash=f"sha256:{known}" if known else None, fname=dest.name, path=dest.parent,
                           downloader=downloader)
        except ValueError as err:  # pooch: the checksum differs (it deleted the file)
            got = f"sha256 {downloader.sha256}" if downloader.sha256 else "its sha256"
            failures.append(f"{url}: {got} is not the one {where} ({known}); the file was deleted"
                            if "hash" in str(err).lower() else f"{url}: {err}")
            continue
        except (requests.RequestException, urllib3.exceptions.HTTPError, _Incomplete, OSError, PrepareError) as err:
            failures.append(f"{url}: {_reason(err, sources.timeout_s, sources.retries)}")
            continue
        size = dest.stat().st_size
        problem = None
        if artefact.size is not None and size != artefact.size:
            problem = f"{size} bytes, but {artefact.size} are pinned in {sources.path} ({artefact.key}.size)"
        elif verify is not None:
            try:
                verify(dest)
            except ValueError as err:
                problem = str(err)
        if problem:
            dest.unlink()
            failures.append(f"{url}: {problem}; the file was deleted")
            continue
        entry = registry.record(artefact, downloader.sha256 or file_sha256(dest), size, url)
        log.info("%s: %s from %s (%d bytes, sha256 %s, %s)", artefact.id, dest, url, size, entry["sha256"],
                 entry["checksum"])
        return {**entry, "status": "downloaded", "seconds": round(time.monotonic() - started, 1),
                "requests": downloader.requests}
    if not partial.exists():  # nothing to resume: no note of where it came from either
        partial.with_name(partial.name + ".url").unlink(missing_ok=True)
    todo = (f"Add a mirror of the same file to {artefact.key}.urls in {sources.path} (an https:// URL, a file:// "
            f"URL or a local path to a copy)")
    if artefact.manual:
        todo += f", or by hand: {artefact.manual}"
    raise PrepareError(f"could not fetch {artefact.file} ({artefact.key} in {sources.path}) from any mirror:\n"
                       + "\n".join(f"  {f}" for f in failures) + f"\n{todo}.")


def discard(path: Path) -> None:
    """Remove a file or folder if present (a stale partial, a staging folder)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
