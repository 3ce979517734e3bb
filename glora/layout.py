"""Where every output of a run lives: the one owner of the results layout (docs/architecture.md §5). The
Snakefile's rules, the stages' defaults and the collectors of the tables and figures all ask here.

Everything goes under ``results/<name>/`` (``name`` defaults to the suite). A configuration value that lies
inside the run's own folder says ``{results}`` for it (``paths.vtab: "{results}/data/vtab"``), so renaming a
suite moves its data, its pre-trained backbones and every link between its stages together. Experiment cells
(``<exp>`` vtab, fewshot, dg or swin; ``<variant>`` a method or a GLoRA size; ``<run>`` ``seed<N>``,
``shot<K>_seed<N>``, or either with ``_lr<rate>`` for a rate of ``train.supernet_lr_grid``)::

    config.resolved.yaml                       the configuration the stages of a Snakemake run read
    data/                                      mini: the generated suite; paper: data-check manifests
    data/prepared/<target>.json                paper: what `python -m glora prepare` fetched and verified
    upstream/, pretrain/<backbone>.safetensors mini: the pre-training set and the pre-trained backbones
    <exp>/train/<variant>/<task>/<run>/        weights.safetensors, metrics.json, epochs.csv
    <exp>/search/<variant>/<task>/<run>/       best.json, candidates.csv            (GLoRA, NOAH)
    <exp>/select/<variant>/<task>/<run>.json   the supernet lr chosen on val200 (the chosen grid run is
                                               copied to <run>)
    <exp>/standalone/<variant>/<task>/<run>.json   the searched subnet trained alone (diagnostics)
    <exp>/retrain/<variant>/<task>/<run>/      the searched subnet trained again    (NOAH)
    <exp>/export/<variant>/<task>/<run>/       model.safetensors, card.json
    <exp>/evaluate/<variant>/<task>/<run>.json test (and domain-generalisation) accuracy
    llm/data/, llm/<stage>/<model>/<row>...    Table 2: the mini suite's tiny LLaMA; train, search, export,
                                               evaluate per row (<method>_<data>, or base)
    efficiency/table4_efficiency.csv           Table 4 (and its settings, .json)
    tables/, figures/, compare/                the paper's tables and figures; ours minus the paper's (golden)
    logs/<...>.log, benchmarks/<...>.tsv       one per job, named like its outputs
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

#: what a configuration value says for the run's own results folder
PLACEHOLDER = "{results}"
#: stages whose output per run is one JSON file, not a folder
FILE_STAGES = ("evaluate", "select", "standalone")
#: the wildcards of an experiment cell, as Snakemake patterns
WILDCARDS = ("{exp}", "{variant}", "{task}", "{run}")


def results_root(config: Mapping) -> str:
    """``results/<name>``: the run's results folder."""
    return f"results/{config.get('name') or config['suite']}"


def expand(config: dict) -> dict:
    """Replace :data:`PLACEHOLDER` in every string of ``config`` by the run's results folder, in place."""
    root = results_root(config)

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                node[key] = walk(value)
        elif isinstance(node, list):
            node[:] = [walk(v) for v in node]
        elif isinstance(node, str) and PLACEHOLDER in node:
            return node.replace(PLACEHOLDER, root)
        return node

    return walk(config)


@dataclass(frozen=True)
class Layout:
    """The paths of one run's outputs (``Layout.of(config)``); every method returns a path as a string, with
    Snakemake wildcards where the caller passes them (``cell("{exp}", "train", ...)``)."""

    root: str

    @classmethod
    def of(cls, config: Mapping) -> Layout:
        return cls(results_root(config))

    # -- experiment cells ------------------------------------------------------------------------------------
    def cell(self, exp: str, stage: str, variant: str, task: str, run: str, name: str = "") -> str:
        """An experiment cell's output: ``name`` in the run's folder, or the run's JSON for a file stage."""
        base = f"{self.root}/{exp}/{stage}/{variant}/{task}/{run}"
        return f"{base}.json" if stage in FILE_STAGES else f"{base}/{name}"

    def pattern(self, stage: str, name: str = "") -> str:
        """:meth:`cell` with every part a Snakemake wildcard (a rule's output)."""
        exp, variant, task, run = WILDCARDS
        return self.cell(exp, stage, variant, task, run, name)

    def cells(self, exp: str, stage: str, name: str = "") -> Iterator[tuple[Path, str, str, str]]:
        """The existing outputs of ``stage`` in experiment ``exp`` as ``(path, variant, task, run)``, sorted."""
        stem = "*.json" if stage in FILE_STAGES else f"*/{name}"
        for path in sorted(Path(self.root, exp, stage).glob(f"*/*/{stem}")):
            run_part = path if stage in FILE_STAGES else path.parent
            yield path, run_part.parent.parent.name, run_part.parent.name, run_part.name.removesuffix(".json")

    # -- logs and Snakemake benchmarks, named like the outputs --------------------------------------------------
    def log(self, *parts: str) -> str:
        return f"{self.root}/logs/{'/'.join(parts)}.log"

    def benchmark(self, *parts: str) -> str:
        return f"{self.root}/benchmarks/{'/'.join(parts)}.tsv"

    def cell_log(self, stage: str) -> str:
        exp, variant, task, run = WILDCARDS
        return self.log(exp, stage, variant, task, run)

    def cell_benchmark(self, stage: str) -> str:
        exp, variant, task, run = WILDCARDS
        return self.benchmark(exp, stage, variant, task, run)

    # -- inputs made by the run ------------------------------------------------------------------------------
    @property
    def resolved_config(self) -> str:
        return f"{self.root}/config.resolved.yaml"

    @property
    def data(self) -> str:
        """The mini suite's generated data; a paper run's data-check manifests."""
        return f"{self.root}/data"

    def manifest(self, family: str) -> str:
        """The manifest of a data check (vtab, fewshot, imagenet, checkpoint_<backbone>, llm)."""
        return f"{self.root}/data/{family}.json"

    def prepared(self, target: str) -> str:
        """The report of a prepare job (vtab, fewshot, imagenet, checkpoint_<backbone>)."""
        return f"{self.root}/data/prepared/{target}.json"

    @property
    def upstream(self) -> str:
        return f"{self.root}/upstream"

    def pretrained(self, backbone: str) -> str:
        return f"{self.root}/pretrain/{backbone}.safetensors"

    # -- Table 2 --------------------------------------------------------------------------------------------
    @property
    def llm_data(self) -> str:
        return f"{self.root}/llm/data"

    def llm(self, stage: str, model: str, row: str, name: str = "") -> str:
        """An LLM row's output: ``<stage>/<model>/<row>`` (a folder, or ``.json`` for evaluate)."""
        base = f"{self.root}/llm/{stage}/{model}/{row}"
        return f"{base}.json" if stage == "evaluate" else (f"{base}/{name}" if name else base)

    def llm_cells(self, stage: str = "evaluate") -> Iterator[tuple[Path, str, str]]:
        """Existing LLM evaluations as ``(path, model, row)``, sorted."""
        for path in sorted(Path(self.root, "llm", stage).glob("*/*.json")):
            yield path, path.parent.name, path.stem

    # -- the paper's outputs ---------------------------------------------------------------------------------
    @property
    def efficiency_table(self) -> str:
        return f"{self.root}/efficiency/table4_efficiency.csv"

    @property
    def tables(self) -> str:
        return f"{self.root}/tables"

    @property
    def figures(self) -> str:
        return f"{self.root}/figures"

    @property
    def compare(self) -> str:
        return f"{self.root}/compare"

    @property
    def report(self) -> str:
        return f"{self.root}/report.zip"
