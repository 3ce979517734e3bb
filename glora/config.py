"""The run configuration: ``config.yaml`` overlaid by other files, validated against the package's schema.

Snakemake validates the same file with the same schema (``workflow/schemas/config.schema.yaml`` is a link to
``glora/schemas/config.schema.yaml``), so a stage run by hand and a stage run by a rule see the same settings.
Overlays merge like Snakemake's ``--configfile``: mappings merge key by key, everything else is replaced.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator, validators

from glora.errors import ConfigError
from glora.layout import expand

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


#: ``locate(keys)``: where the key path (e.g. ``["train", "epochs"]``) is set, ``file:line`` or ``--set ...``
Locator = Callable[[Sequence[str | int]], str | None]


def validate_config(config: dict, source: str = "config", locate: Locator | None = None) -> dict:
    """Fill in defaults in place and check ``config`` against the schema, then the options of every method
    (:func:`check_method_options`); a :class:`ConfigError` names the offending key (and, with ``locate``, the
    file and line that set it) and the fix. ``{results}`` in a value becomes the run's results folder
    (:func:`glora.layout.expand`)."""
    validator = _Validator(schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = []
        for err in errors[:10]:
            keys = list(err.absolute_path)
            if err.validator == "additionalProperties" and isinstance(err.instance, dict):
                keys += sorted(set(err.instance) - set(err.schema.get("properties", {})))[:1]
            at = locate(keys) if locate else None
            where = ".".join(str(p) for p in err.absolute_path) or "<top level>"
            lines.append(f"  {at + ': ' if at else ''}{where}: {err.message}")
        raise ConfigError(f"{source} is invalid ({len(errors)} problem(s)):\n" + "\n".join(lines) +
                          f"\nallowed keys and types: {SCHEMA_PATH}")
    check_method_options(config, source, locate)
    return expand(config)


def _yaml_line(text: str, keys: Sequence[str | int]) -> int | None:
    """The line of ``text`` (YAML) where the key path ``keys`` is set, or None."""
    node, line = yaml.compose(text), None
    for key in keys:
        if isinstance(node, yaml.MappingNode):
            found = next(((k, v) for k, v in node.value if k.value == str(key)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            found = (node.value[key], node.value[key])
        else:
            found = None
        if found is None:
            return None
        line, node = found[0].start_mark.line + 1, found[1]
    return line


def locator(paths: Sequence[str | Path], overrides: Sequence[str] = ()) -> Locator:
    """Where a key path is set: the last ``--set`` that sets it (or a mapping above it), else the last of the
    configuration files ``paths`` (in the order they are applied) that sets it, as ``file:line``."""
    files = [(Path(p), Path(p).read_text()) for p in paths]

    def locate(keys: Sequence[str | int]) -> str | None:
        wanted = [str(k) for k in keys]
        for text in reversed(overrides):
            key = text.partition("=")[0].split(".")
            if wanted[:len(key)] == key:
                return f"--set {text}"
        for path, text in reversed(files):
            line = _yaml_line(text, keys)
            if line is not None:
                return f"{path}:{line}"
        return None

    return locate


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
        raise ConfigError(f"--set expects KEY=VALUE with a dotted key (e.g. paths.checkpoint=ckpt.npz), got {text!r}")
    try:
        nested: dict = yaml.safe_load(value) if value else None
    except yaml.YAMLError as err:
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"--set {text}: the value of {key} is not valid YAML ({problem}); close brackets and "
                          f"quotes, e.g. --set 'train.epochs=5' or --set 'experiments.vtab.seeds=[0, 1]'") from None
    for part in reversed(key.split(".")):
        nested = {part: nested}
    return nested


def load_config(paths: Sequence[str | Path], overrides: Sequence[str] = ()) -> dict:
    """The validated configuration of ``paths`` applied in order (the first is the base), then ``overrides``
    (``KEY=VALUE`` strings, see :func:`parse_override`)."""
    if not paths:
        raise ConfigError("no configuration given: pass --config config.yaml (and overlays such as "
                          "--config config/mini.yaml)")
    config: dict = {}
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"configuration file {path} does not exist")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
            problem = getattr(err, "problem", None) or str(err).splitlines()[0]
            raise ConfigError(f"configuration file {where}: not valid YAML ({problem}); fix that line") from None
        if not isinstance(data, dict):
            raise ConfigError(f"configuration file {path} must hold a mapping of keys, got {type(data).__name__}")
        merge(config, data)
    for text in overrides:
        merge(config, parse_override(text))
    source = " + ".join([str(p) for p in paths] + [f"--set {t}" for t in overrides])
    return validate_config(config, source=source, locate=locator(paths, overrides))


def config_hash(config: Mapping) -> str:
    """A short, order-independent fingerprint of a configuration (for provenance)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


#: experiment -> (data family, config key of its settings under ``experiments``)
EXPERIMENTS = {"vtab": ("vtab", "vtab"), "fewshot": ("fewshot", "fewshot"), "dg": ("fewshot", "domain_generalization"),
               "swin": ("vtab", "swin")}


def backbone_of(config: Mapping, exp: str) -> tuple[str, str]:
    """``(backbone, checkpoint)`` an experiment runs on."""
    if exp == "swin":
        spec = config["experiments"]["swin"]
        return spec["backbone"], spec["checkpoint"]
    return config["backbone"], config["paths"]["checkpoint"]


def glora_size(config: Mapping, name: str) -> dict:
    """The entry of ``glora.sizes`` called ``name`` (ranks, budget_m)."""
    sizes = {s["name"]: s for s in config["glora"]["sizes"]}
    if name not in sizes:
        raise ConfigError(f"unknown GLoRA size {name!r}; config glora.sizes has {sorted(sizes)}")
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


#: keys of ``methods.<name>`` that are not options of the method
METHOD_META_KEYS = ("per_task", "budget_m")


def check_method_options(config: Mapping, source: str = "config", locate: Locator | None = None) -> None:
    """Refuse, when the configuration is loaded (and when Snakemake plans), a ``methods.<name>`` entry for an
    unregistered method, or a key there or under ``per_task.<task>`` that is not one of the method's options or
    has the wrong type, naming the file and line, the method, the key and the valid keys. The options are the
    fields of the method's record (:mod:`glora.methods.record`); ranges (a rank of 0) are checked by the
    method when a job applies it."""
    from glora.methods.registry import METHODS

    for method, entry in (config.get("methods") or {}).items():
        if method not in METHODS:
            at = (locate(["methods", method]) if locate else None) or source
            raise ConfigError(f"{at}: methods.{method}: unknown method; registered: {sorted(METHODS)}")
        record = METHODS[method]
        places = [(["methods", method], {k: v for k, v in entry.items() if k not in METHOD_META_KEYS})]
        places += [(["methods", method, "per_task", task], values)
                   for task, values in entry.get("per_task", {}).items()]
        for keys_at, values in places:
            problem = record.option_problem(values, also=METHOD_META_KEYS if len(keys_at) == 2 else ())
            if problem:
                at = (locate([*keys_at, problem[0]]) if locate else None) or source
                raise ConfigError(f"{at}: {'.'.join(keys_at)}{problem[1]}")


def method_settings(config: Mapping, method: str, task: str | None = None) -> dict:
    """The keyword arguments of ``method``'s ``apply`` from ``methods.<method>``, with ``per_task.<task>``
    entries replacing the defaults (e.g. VPT's prompt length, FacT's rank and scale)."""
    entry = config.get("methods", {}).get(method, {})
    kwargs = {k: v for k, v in entry.items() if k not in METHOD_META_KEYS}
    if task is not None:
        kwargs.update(entry.get("per_task", {}).get(task, {}))
    return kwargs
