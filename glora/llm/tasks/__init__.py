"""The four Open LLM Leaderboard (v1) benchmarks of Table 2 as lm-eval tasks over local files.

The YAML files beside this module define the tasks with lm-eval's own prompts and metrics (``dataset_path:
json``; their ``data_files`` are relative to an evaluation data root). :func:`write_task_configs` writes, for one
data root, a folder of small YAMLs that ``include`` them with absolute ``data_files`` and the run's shot counts
(MMLU: one task per subject, as lm-eval's ``mmlu``), to be registered with ``TaskManager(include_path=folder)``.

Local layout (one folder per benchmark; rows exactly as the Hugging Face datasets hold them, written e.g. with
``datasets.load_dataset(...)[split].to_json(path)``; ``.jsonl`` or ``.json``)::

    <root>/arc_challenge/train.jsonl, test.jsonl     allenai/ai2_arc, ARC-Challenge
    <root>/hellaswag/train.jsonl, validation.jsonl   Rowan/hellaswag
    <root>/mmlu/dev.jsonl, test.jsonl                cais/mmlu, "all" (rows carry their subject)
    <root>/truthfulqa/validation.jsonl               truthful_qa, "multiple_choice"

Scores (Table 2 / the leaderboard): ARC acc_norm (25-shot), HellaSwag acc_norm (10-shot), MMLU acc (5-shot; the
mean over the 57 subjects, as the leaderboard averaged them), TruthfulQA mc2 (0-shot).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from glora.errors import DataError

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Benchmark:
    """One benchmark: its lm-eval task (YAML beside this module), local folder, files, split and score."""

    name: str              # our key in results: arc, hellaswag, mmlu, truthfulqa
    task: str              # the task name in the YAML (MMLU: the prefix of its subject tasks)
    folder: str            # under the data root
    files: tuple[str, ...] # splits that must exist (file stems)
    eval_split: str        # the split lm-eval scores (where the search's held-out sample is drawn from)
    metric: str            # lm-eval's metric that Table 2 reports
    label: str             # what the metric is called in the paper's table
    shots: int             # the leaderboard's shot count

    @property
    def yaml_path(self) -> Path:
        return HERE / f"{self.task}.yaml"


BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in (
    Benchmark("arc", "glora_arc_challenge", "arc_challenge", ("train", "test"), "test", "acc_norm",
              "ARC-challenge acc_norm", 25),
    Benchmark("hellaswag", "glora_hellaswag", "hellaswag", ("train", "validation"), "validation", "acc_norm",
              "HellaSwag acc_norm", 10),
    Benchmark("mmlu", "glora_mmlu", "mmlu", ("dev", "test"), "test", "acc", "MMLU acc", 5),
    Benchmark("truthfulqa", "glora_truthfulqa_mc2", "truthfulqa", ("validation",), "validation", "acc",
              "TruthfulQA mc2", 0),
)}

#: the leaderboard's shot counts, benchmark -> shots (Table 2's column headers)
DEFAULT_SHOTS = {name: b.shots for name, b in BENCHMARKS.items()}


def data_file(root: str | Path, benchmark: str, split: str) -> Path:
    """``<root>/<folder>/<split>.jsonl`` (or ``.json``); a ``ValueError`` names the missing file and its source."""
    b = BENCHMARKS[benchmark]
    folder = Path(root) / b.folder
    for ext in (".jsonl", ".json"):
        if (folder / f"{split}{ext}").is_file():
            return folder / f"{split}{ext}"
    raise DataError(f"evaluation file {folder / (split + '.jsonl')} (or .json) does not exist: {b.label} needs "
                    f"{', '.join(s + '.jsonl' for s in b.files)} in {folder} (see glora.llm.tasks for the layout)")


def check_eval_data(root: str | Path, benchmarks=None) -> dict[str, dict[str, Path]]:
    """Every file the benchmarks need, benchmark -> split -> path; a ``ValueError`` for the first missing one."""
    if not Path(root).is_dir():
        folders = ", ".join(b.folder + "/" for b in BENCHMARKS.values())
        raise DataError(f"evaluation data folder {root} does not exist (expected {folders} inside it; see "
                        "glora.llm.tasks)")
    return {name: {split: data_file(root, name, split) for split in BENCHMARKS[name].files}
            for name in (benchmarks or BENCHMARKS)}


def read_rows(path: Path) -> list[dict]:
    """Rows of a JSON-lines file (or a JSON list); a ``ValueError`` names the file and line."""
    text = path.read_text()
    if path.suffix == ".json" and text.lstrip().startswith("["):
        return json.loads(text)
    rows = []
    for i, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise DataError(f"{path}: line {i} is not JSON ({err})") from None
    return rows


def mmlu_subjects(root: str | Path) -> list[str]:
    """The subjects present in MMLU's test file, sorted."""
    rows = read_rows(data_file(root, "mmlu", "test"))
    missing = [i for i, r in enumerate(rows) if "subject" not in r]
    if missing:
        raise DataError(f"{data_file(root, 'mmlu', 'test')}: rows {missing[:5]} have no 'subject' (write the "
                        "'all' configuration of cais/mmlu, whose rows carry their subject)")
    return sorted({r["subject"] for r in rows})


def task_names(root: str | Path, benchmarks=None) -> dict[str, list[str]]:
    """benchmark -> the lm-eval task names :func:`write_task_configs` registers for it."""
    out = {}
    for name in benchmarks or BENCHMARKS:
        b = BENCHMARKS[name]
        out[name] = [f"{b.task}_{s}" for s in mmlu_subjects(root)] if name == "mmlu" else [b.task]
    return out


def _yaml(path: Path, config: Mapping) -> None:
    path.write_text(yaml.safe_dump(dict(config), sort_keys=False, allow_unicode=True))


def write_task_configs(root: str | Path, folder: str | Path, shots: Mapping[str, int] | None = None,
                       benchmarks=None, cache_dir: str | Path | None = None) -> dict[str, list[str]]:
    """Write the run's task YAMLs into ``folder`` (MMLU: also each subject's dev/test rows); returns
    benchmark -> task names. Register them with ``lm_eval.tasks.TaskManager(include_path=folder)``.

    ``shots``: benchmark -> number of few-shot examples (default :data:`DEFAULT_SHOTS`, the leaderboard's).
    ``cache_dir``: where ``datasets`` keeps its Arrow copies of the files (default ``folder/cache``).
    """
    shots = {**DEFAULT_SHOTS, **(shots or {})}
    files = check_eval_data(root, benchmarks)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cache = str(Path(cache_dir or folder / "cache").resolve())
    names: dict[str, list[str]] = {}
    for name, paths in files.items():
        b = BENCHMARKS[name]
        base = {"include": str(b.yaml_path), "num_fewshot": int(shots[name])}
        if name != "mmlu":
            _yaml(folder / f"{b.task}.yaml", {**base, "task": b.task, "dataset_kwargs": {
                "data_files": {split: str(p.resolve()) for split, p in paths.items()}, "cache_dir": cache}})
            names[name] = [b.task]
            continue
        rows = {split: read_rows(p) for split, p in paths.items()}
        names[name] = []
        for subject in mmlu_subjects(root):
            data_files = {}
            for split, split_rows in rows.items():
                path = folder / "mmlu" / split / f"{subject}.jsonl"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("".join(json.dumps(r) + "\n" for r in split_rows if r.get("subject") == subject))
                data_files[split] = str(path.resolve())
            if not (folder / "mmlu" / "dev" / f"{subject}.jsonl").stat().st_size and shots[name]:
                raise DataError(f"{paths['dev']} has no rows of subject {subject!r}: MMLU's {shots[name]}-shot "
                                "prompts take that subject's dev examples")
            task = f"{b.task}_{subject}"
            description = f"The following are multiple choice questions (with answers) about " \
                          f"{subject.replace('_', ' ')}.\n\n"
            _yaml(folder / f"{task}.yaml", {**base, "task": task, "task_alias": subject,
                                            "description": description,
                                            "dataset_kwargs": {"data_files": data_files, "cache_dir": cache}})
            names[name].append(task)
    return names


def task_manager(folder: str | Path):
    """An lm-eval ``TaskManager`` that knows the tasks written into ``folder`` (only those: indexing lm-eval's own
    thousands of YAMLs takes seconds, and ours include their definitions by path)."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(folder), include_defaults=False)


def load_tasks(manager, names: list[str]) -> dict:
    """Task objects by name (lm-eval >= 0.4.10 has ``TaskManager.load``; older ones ``get_task_dict``)."""
    if hasattr(manager, "load"):
        return dict(manager.load(list(names))["tasks"])
    from lm_eval.tasks import get_task_dict

    return dict(get_task_dict(list(names), manager))
