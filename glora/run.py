"""One run -- a method (and GLoRA size) trained on a task with a seed -- as the stages see it, and how it travels
on a command line: the Snakemake plan writes a run's flags with :meth:`Run.cli_args`, the stages read them back
with :meth:`Run.from_args` (the flags are defined once, by :func:`add_run_arguments`). No torch.

A plan cell (:class:`glora.workflow.Job`: experiment, variant, task, run name) says where a run's files go;
:meth:`glora.workflow.Job.as_run` gives the run it stands for.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass

from glora.config import check_method_options, glora_size, method_settings
from glora.errors import ConfigError
from glora.methods.registry import Method, get_method
from glora.search_space import read_choices

#: The training and selection splits of each family: search-based methods hold out a validation split
#: for the search; the others train on everything but the test set (the paper's protocol).
SPLITS = {
    "vtab": {"search_train": "train800", "final_train": "train800val200", "val": "val200", "test": "test"},
    "fewshot": {"search_train": "train", "final_train": "train", "val": "val", "test": "test"},
}


@dataclass(frozen=True)
class Run:
    """One experiment cell as a stage runs it. ``choices``: for a method retrained after its search (NOAH), the
    search's best.json, which fixes the subnet that is built."""

    method: str
    task: str
    seed: int = 0
    size: str | None = None
    family: str = "vtab"
    shot: int | None = None
    choices: str | None = None

    def __post_init__(self):
        if self.family not in SPLITS:
            raise ConfigError(f"family {self.family!r} cannot be trained on; use one of {sorted(SPLITS)}")
        if (self.family == "fewshot") != (self.shot is not None):
            raise ConfigError("--shot is required for the few-shot family and meaningless otherwise")
        if self.choices is not None and not get_method(self.method).retrain:
            raise ConfigError(f"--choices at training time is for methods retrained after a search (NOAH); "
                              f"{self.method!r} is not one")

    @property
    def spec(self) -> Method:
        return get_method(self.method)

    def method_kwargs(self, config: Mapping) -> dict:
        """Keyword arguments of the method's ``apply`` (GLoRA: the ranks of ``size``; NOAH retrained: its
        subnet); ``methods.<method>`` is checked here too, for configurations built without
        :func:`glora.config.load_config`."""
        check_method_options({"methods": {self.method: config.get("methods", {}).get(self.method, {})}})
        if self.method == "glora":
            if self.size is None:
                raise ConfigError(f"GLoRA needs --size, one of {[s['name'] for s in config['glora']['sizes']]}")
            ranks = list(glora_size(config, self.size)["ranks"])
            return {**method_settings(config, "glora", self.task), "ranks": ranks}
        if self.size is not None:
            raise ConfigError(f"--size applies to GLoRA only, not to {self.method!r}")
        kwargs = method_settings(config, self.method, self.task)
        if self.choices is not None:
            kwargs["subnet"] = read_choices(self.choices)
        return kwargs

    def to_dict(self) -> dict:
        out = {"method": self.method, "size": self.size, "task": self.task, "seed": self.seed,
               "family": self.family, "shot": self.shot}
        if self.choices is not None:
            out["choices"] = self.choices
        return out

    # -- the command line ------------------------------------------------------------------------------------
    def cli_args(self) -> list[str]:
        """The flags that give a stage this run (read back by :meth:`from_args`)."""
        args = ["--method", self.method, "--task", self.task, "--seed", str(self.seed)]
        if self.size:
            args += ["--size", self.size]
        if self.family != "vtab":
            args += ["--family", self.family, "--shot", str(self.shot)]
        return args

    @classmethod
    def from_args(cls, args: argparse.Namespace, *, trains: bool = False) -> Run:
        """The run of a stage's parsed flags. A ``--choices`` file is the run's subnet when the method is retrained
        after its search; a stage that ``trains`` accepts it for such methods only (other stages read it as the
        subnet to merge or score)."""
        choices = getattr(args, "choices", None)
        retrained = choices is not None and get_method(args.method).retrain
        if choices is not None and trains and not retrained:
            raise ConfigError(f"train --choices is for methods retrained after their search (NOAH), not "
                              f"{args.method!r}")
        return cls(method=args.method, task=args.task, seed=args.seed, size=args.size, family=args.family,
                   shot=args.shot, choices=str(choices) if retrained else None)


def int_at_least(least: int):
    """An argparse type: an integer >= ``least``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {least}, got {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"expected an integer >= {least}, got {value}")
        return value

    return parse


def add_run_arguments(parser: argparse.ArgumentParser, *, searched: bool = False) -> None:
    """The flags of :meth:`Run.cli_args`; ``searched``: the stage works on supernets (``--method`` defaults to
    GLoRA)."""
    if searched:
        parser.add_argument("--method", default="glora", help="a search-based method (default: %(default)s)")
    else:
        parser.add_argument("--method", required=True, help="a registered method (glora, linear, full, ...)")
    parser.add_argument("--size", help="GLoRA only: a name from config glora.sizes (ranks and budget)")
    parser.add_argument("--task", required=True, help="task (VTAB-1K folder) or few-shot dataset")
    parser.add_argument("--seed", type=int_at_least(0), default=0)
    parser.add_argument("--family", default="vtab", choices=list(SPLITS))
    parser.add_argument("--shot", type=int_at_least(1), help="few-shot family: shots per class (1, 2, 4, 8, 16)")
