"""Safe unpacking of zip, tar, tar.gz (and .tgz, .tar.bz2, .tar.xz) archives into a folder.

Every member is checked before anything of it is written: an absolute name, a ``..`` component, a link
whose target leaves the folder, or a device or FIFO refuses the whole archive, naming the member (the
caller unpacks into a staging folder and removes it). ``mapping`` selects and places members: member
prefix -> folder prefix (``{"food-101/images/": ""}``); members under no prefix are not extracted.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import sys
import tarfile
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from glora.data.prepare.sources import PrepareError


class UnsafeArchive(PrepareError):
    """An archive with a member that would land outside the target folder."""


def members(archive: str | Path) -> Iterator[str]:
    """The member names of ``archive`` (a zip's directory is read at once; a tar is read through)."""
    archive = Path(archive)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            yield from zf.namelist()
        return
    with _open_tar(archive) as tar:
        for member in tar:
            yield member.name


def _open_tar(archive: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(archive, "r|*")
    except tarfile.TarError as err:
        raise PrepareError(f"{archive}: neither a zip nor a tar archive ({err})") from None


def _target(archive: Path, name: str, mapping: Mapping[str, str]) -> str | None:
    """The member's path relative to the folder (None: not extracted); refuses unsafe names."""
    clean = name.replace("\\", "/")
    if clean.startswith("/") or (len(clean) > 1 and clean[1] == ":") or ".." in clean.split("/"):
        raise UnsafeArchive(f"{archive}: member {name!r} would land outside the target folder (an absolute path "
                            f"or '..'); the archive is refused. Is the file from the expected source?")
    for prefix in sorted(mapping, key=len, reverse=True):
        if clean.startswith(prefix):
            rel = (mapping[prefix] + clean[len(prefix):]).strip("/")
            return posixpath.normpath(rel) if rel else None
    return None


def _link_target(archive: Path, name: str, rel: str, link: str, hard: bool) -> str:
    """The folder-relative path a link points to; refuses one that leaves the folder."""
    base = "" if hard else posixpath.dirname(rel)
    resolved = posixpath.normpath(posixpath.join(base, link.replace("\\", "/")))
    if link.startswith("/") or resolved == ".." or resolved.startswith("../"):
        raise UnsafeArchive(f"{archive}: member {name!r} links to {link!r}, outside the target folder; the "
                            f"archive is refused")
    return resolved


def unpack(archive: str | Path, folder: str | Path, mapping: Mapping[str, str] | None = None, *,
           quiet: bool = False) -> int:
    """Extract ``archive`` into ``folder`` (created) through ``mapping``; the number of files written."""
    from tqdm import tqdm

    archive, folder = Path(archive), Path(folder)
    mapping = {"": ""} if mapping is None else dict(mapping)
    folder.mkdir(parents=True, exist_ok=True)
    bar = tqdm(desc=f"unpacking {archive.name}", unit=" files", disable=quiet or not sys.stderr.isatty(),
               leave=False)
    written = 0
    with bar:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                infos = zf.infolist()
                plan = [(info, _target(archive, info.filename, mapping)) for info in infos]  # all checked first
                for info, rel in plan:
                    if rel is None:
                        continue
                    mode = info.external_attr >> 16
                    out = folder / rel
                    if stat.S_ISLNK(mode):
                        link = zf.read(info).decode()
                        _link_target(archive, info.filename, rel, link, hard=False)
                        out.parent.mkdir(parents=True, exist_ok=True)
                        os.symlink(link, out)
                    elif info.is_dir():
                        out.mkdir(parents=True, exist_ok=True)
                    else:
                        out.parent.mkdir(parents=True, exist_ok=True)
                        with zf.open(info) as src, open(out, "wb") as dst:
                            shutil.copyfileobj(src, dst, 1 << 20)
                        written += 1
                        bar.update()
            return written
        with _open_tar(archive) as tar:
            for member in tar:
                rel = _target(archive, member.name, mapping)
                if member.isdev() or member.isfifo():
                    raise UnsafeArchive(f"{archive}: member {member.name!r} is a device or FIFO; the archive is "
                                        f"refused")
                if member.issym() or member.islnk():
                    linked = _link_target(archive, member.name, rel or member.name, member.linkname, member.islnk())
                    if rel is None:
                        continue
                    out = folder / rel
                    out.parent.mkdir(parents=True, exist_ok=True)
                    if member.issym():
                        os.symlink(member.linkname, out)
                    else:
                        target = _target(archive, linked, mapping)
                        if target is None or not (folder / target).is_file():
                            raise UnsafeArchive(f"{archive}: hard link {member.name!r} points to {member.linkname!r}, "
                                                f"which is not extracted before it; the archive is refused")
                        os.link(folder / target, out)
                    continue
                if rel is None:
                    continue
                out = folder / rel
                if member.isdir():
                    out.mkdir(parents=True, exist_ok=True)
                elif member.isfile():
                    out.parent.mkdir(parents=True, exist_ok=True)
                    src = tar.extractfile(member)
                    with src, open(out, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
                    written += 1
                    bar.update()
    return written
