"""The sources file (``config/sources.yaml``): where each public input comes from, validated into records.

An :class:`Artefact` is one file to fetch: its mirrors in order, the sha256 and size where known, how to
unpack it, its licence and (where there is no public URL) what to do by hand. The :class:`Registry` is the
manifest beside the data (``<paths.downloads>/registry.json``) that records the sha256 and size of every
verified download; for an artefact without a pinned checksum the recorded one is required from then on.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from glora.atomic import write_json
from glora.errors import GloraError

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "sources.schema.yaml"


class PrepareError(GloraError, ValueError):
    """Data that cannot be prepared: the message names the file, URL or key and what to do (CLI: exit 2)."""


@dataclass(frozen=True)
class Artefact:
    """One file to fetch. ``key`` says where it is declared (``vtab.archive``); ``id`` names it in the registry."""

    id: str
    key: str
    file: str
    urls: tuple[str, ...]
    sha256: str | None = None
    size: int | None = None
    unpack: dict[str, str] | None = None
    licence: str = ""
    manual: str = ""


@dataclass(frozen=True)
class Sources:
    """The validated sources file: its path, the raw mapping and the download settings."""

    path: Path
    data: dict
    timeout_s: float = 60.0
    retries: int = 3
    artefacts: dict[str, Artefact] = field(default_factory=dict, repr=False)

    def section(self, *keys: str):
        node = self.data
        for key in keys:
            node = node[key]
        return node

    def vtab_archive(self) -> Artefact:
        spec = self.data["vtab"]
        return _artefact("vtab.archive", "vtab", spec["archive"], spec["licence"])

    def fewshot_dataset(self, name: str) -> dict:
        datasets = self.data["fewshot"]["datasets"]
        if name not in datasets:
            raise PrepareError(f"{self.path}: fewshot.datasets has no entry {name!r} (it has {sorted(datasets)}); "
                               f"add its archives there")
        return datasets[name]

    def fewshot_archives(self, name: str) -> list[Artefact]:
        spec = self.fewshot_dataset(name)
        return [_artefact(f"fewshot.datasets.{name}.archives[{i}]", f"fewshot/{name}", a, spec["licence"])
                for i, a in enumerate(spec.get("archives", []))]

    def split_files(self, dataset: str) -> list[Artefact]:
        """The split lists of ``dataset``; each artefact's ``file`` is its path in the prepared root."""
        splits = self.data["fewshot"]["splits"]
        out = []
        for key, spec in splits["files"].items():
            if key.split("/", 1)[0] != dataset:
                continue
            source = spec.get("from", key)
            out.append(Artefact(id=f"fewshot/splits/{key}", key=f"fewshot.splits.files.{key}", file=key,
                                urls=tuple(base + source for base in splits["urls"]), sha256=spec.get("sha256"),
                                size=spec.get("size"), licence=splits.get("licence", "")))
        return out

    def imagenet_archives(self, variant: str) -> list[Artefact]:
        variants = self.data["imagenet"]["variants"]
        if variant not in variants:
            raise PrepareError(f"{self.path}: imagenet.variants has no entry {variant!r} (it has {sorted(variants)})")
        spec = variants[variant]
        return [_artefact(f"imagenet.variants.{variant}.archives[{i}]", f"imagenet/{variant}", a, spec["licence"])
                for i, a in enumerate(spec["archives"])]

    def checkpoint(self, backbone: str, file: str) -> Artefact:
        checkpoints = self.data["checkpoints"]
        if backbone not in checkpoints:
            raise PrepareError(f"{self.path}: checkpoints has no entry {backbone!r} (it has {sorted(checkpoints)}); "
                               f"add the URL of its pre-trained weights there")
        spec = checkpoints[backbone]
        return Artefact(id=f"checkpoints/{backbone}", key=f"checkpoints.{backbone}", file=file,
                        urls=tuple(spec["urls"]), sha256=spec.get("sha256"), size=spec.get("size"),
                        licence=spec["licence"])


def _artefact(key: str, group: str, spec: dict, licence: str) -> Artefact:
    return Artefact(id=f"{group}/{spec['file']}", key=key, file=spec["file"], urls=tuple(spec["urls"]),
                    sha256=spec.get("sha256"), size=spec.get("size"), unpack=spec.get("unpack"), licence=licence)


def load_sources(path: str | Path) -> Sources:
    """The sources file at ``path``, validated (defaults filled in); a :class:`PrepareError` names the key."""
    from glora.config import _Validator  # the config's validator: it also fills in the schema's defaults

    path = Path(path)
    if not path.is_file():
        raise PrepareError(f"sources file {path} not found; set paths.sources in the configuration to the file "
                           f"that lists the download mirrors (the repository's is config/sources.yaml)")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise PrepareError(f"sources file {path} is not valid YAML: {err}") from None
    errors = sorted(_Validator(yaml.safe_load(SCHEMA_PATH.read_text())).iter_errors(data),
                    key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"  {'.'.join(str(p) for p in e.absolute_path) or '<top level>'}: {e.message}" for e in errors[:10]]
        raise PrepareError(f"sources file {path} is invalid ({len(errors)} problem(s)):\n" + "\n".join(lines) +
                           f"\nallowed keys and types: {SCHEMA_PATH}")
    settings = data["settings"]
    return Sources(path, data, timeout_s=float(settings["timeout_s"]), retries=int(settings["retries"]))


class Registry:
    """``<downloads>/registry.json``: per artefact id, the sha256, size and URL of its verified download."""

    def __init__(self, folder: str | Path):
        self.path = Path(folder) / "registry.json"
        try:
            self.records: dict = json.loads(self.path.read_text()) if self.path.is_file() else {}
        except json.JSONDecodeError as err:
            raise PrepareError(f"{self.path}: not valid JSON ({err}); delete it (the checksums it recorded are "
                               f"then recorded again on the next download)") from None

    def sha256(self, artefact_id: str) -> str | None:
        return self.records.get(artefact_id, {}).get("sha256")

    def record(self, artefact: Artefact, sha256: str, size: int, url: str | None) -> dict:
        """Remember a verified file. Prepare jobs run in parallel: the read-modify-write holds a lock."""
        with self._locked():
            return self._record(artefact, sha256, size, url)

    @contextlib.contextmanager
    def _locked(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(".registry.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _record(self, artefact: Artefact, sha256: str, size: int, url: str | None) -> dict:
        fresh = Registry(self.path.parent).records
        old = fresh.get(artefact.id, {})
        entry = {"file": artefact.file, "sha256": sha256, "size": size,
                 "checksum": "pinned" if artefact.sha256 else "recorded",
                 "url": url or old.get("url"),
                 "recorded": old.get("recorded") if old.get("sha256") == sha256 else
                 datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
        fresh[artefact.id] = entry
        write_json(self.path, dict(sorted(fresh.items())))
        self.records = fresh
        return entry
