"""The run configuration: ``config.yaml`` overlaid by other files, validated against the package's schema.

Snakemake validates the same file with the same schema (``workflow/schemas/config.schema.yaml`` is a link to
``glora/schemas/config.schema.yaml``), so a stage run by hand and a stage run by a rule see the same settings.
Overlays merge like Snakemake's ``--configfile``: mappings merge key by key, everything else is replaced.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator, validators

SCHEMA_PATH = Path(__file__).with_name("schemas") / "config.schema.yaml"


def _with_defaults(cls):
    """A validator class that also fills in each property's ``default`` (what Snakemake's validate does)."""
    check_properties = cls.VALIDATORS["properties"]

    def properties(validator, props, instance, schema):
        if isinstance(instance, dict):
            for key, sub in props.items():
                if "default" in sub and key not in instance:
                    instance[key] = json.loads(json.dumps(sub["default"]))  # a fresh copy
        yield from check_properties(validator, props, instance, schema)

    return validators.extend(cls, {"properties": properties})


_Validator = _with_defaults(Draft202012Validator)


def schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def validate_config(config: dict, source: str = "config") -> dict:
    """Fill in defaults in place and check ``config``; a ``ValueError`` names the offending key and the fix."""
    validator = _Validator(schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = []
        for err in errors[:10]:
            where = ".".join(str(p) for p in err.absolute_path) or "<top level>"
            lines.append(f"  {where}: {err.message}")
        raise ValueError(f"{source} is invalid ({len(errors)} problem(s)):\n" + "\n".join(lines) +
                         f"\nallowed keys and types: {SCHEMA_PATH}")
    return config


def merge(base: dict, overlay: Mapping) -> dict:
    """``base`` updated by ``overlay`` recursively (mappings merge, other values are replaced); in place."""
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = json.loads(json.dumps(value))
    return base


def parse_override(text: str) -> dict:
    """``"a.b=value"`` (value parsed as YAML) as the nested mapping ``{"a": {"b": value}}``."""
    key, sep, value = text.partition("=")
    if not sep or not key or not all(key.split(".")):
        raise ValueError(f"--set expects KEY=VALUE with a dotted key (e.g. paths.checkpoint=ckpt.npz), got {text!r}")
    nested: dict = yaml.safe_load(value) if value else None
    for part in reversed(key.split(".")):
        nested = {part: nested}
    return nested


def load_config(paths: Sequence[str | Path], overrides: Sequence[str] = ()) -> dict:
    """The validated configuration of ``paths`` applied in order (the first is the base), then ``overrides``
    (``KEY=VALUE`` strings, see :func:`parse_override`)."""
    if not paths:
        raise ValueError("no configuration given: pass --config config.yaml (and overlays such as "
                         "--config config/mini.yaml)")
    config: dict = {}
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"configuration file {path} does not exist")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ValueError(f"configuration file {path} is not valid YAML: {err}") from None
        if not isinstance(data, dict):
            raise ValueError(f"configuration file {path} must hold a mapping of keys, got {type(data).__name__}")
        merge(config, data)
    for text in overrides:
        merge(config, parse_override(text))
    source = " + ".join([str(p) for p in paths] + [f"--set {t}" for t in overrides])
    return validate_config(config, source=source)


def config_hash(config: Mapping) -> str:
    """A short, order-independent fingerprint of a configuration (for provenance)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def glora_size(config: Mapping, name: str) -> dict:
    """The entry of ``glora.sizes`` called ``name`` (ranks, budget_m)."""
    sizes = {s["name"]: s for s in config["glora"]["sizes"]}
    if name not in sizes:
        raise ValueError(f"unknown GLoRA size {name!r}; config glora.sizes has {sorted(sizes)}")
    return sizes[name]


def train_settings(config: Mapping, method: str, task: str, supernet: bool | None = None) -> dict:
    """The training settings of (method, task): ``train`` defaults, the method's overrides, and the task's lr.

    A supernet (``supernet``; default: whether the method is search-based) trains ``epochs`` at the task's
    Table 5 rate (``lr_per_task``, else ``supernet_lr``, else ``lr``); a fixed model (a baseline, NOAH's
    retrained subnet) trains ``baseline_epochs`` at ``lr``. A method's own overrides win (its per-task lr
    first).
    """
    from glora.methods.registry import get_method

    train = config["train"]
    overrides = dict(train["overrides"].get(method, {}))
    settings = {k: v for k, v in train.items() if k not in NOT_SETTINGS}
    if get_method(method).search_based if supernet is None else supernet:
        fallback = train["lr"] if train["supernet_lr"] is None else train["supernet_lr"]
        settings["lr"] = train["lr_per_task"].get(task, fallback)
    else:
        settings["epochs"] = train["baseline_epochs"]
    method_task_lr = overrides.pop("lr_per_task", {}).get(task)
    settings.update(overrides)
    if method_task_lr is not None:
        settings["lr"] = method_task_lr
    return settings


#: keys of ``train`` that choose among settings rather than being one
NOT_SETTINGS = ("overrides", "lr_per_task", "seeds", "baseline_epochs", "supernet_lr", "supernet_lr_grid")


#: keys of ``methods.<name>`` that are not keyword arguments of the method's ``apply``
METHOD_META_KEYS = ("per_task", "budget_m")


def method_settings(config: Mapping, method: str, task: str | None = None) -> dict:
    """The keyword arguments of ``method``'s ``apply`` from ``methods.<method>``, with ``per_task.<task>``
    entries replacing the defaults (e.g. VPT's prompt length, FacT's rank and scale)."""
    entry = config.get("methods", {}).get(method, {})
    kwargs = {k: v for k, v in entry.items() if k not in METHOD_META_KEYS}
    if task is not None:
        kwargs.update(entry.get("per_task", {}).get(task, {}))
    return kwargs
