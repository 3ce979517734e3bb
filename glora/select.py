"""Choosing a supernet's learning rate per task on val200, the way the paper chose Table 5 (appendix A).

The paper searched the supernet learning rate of each VTAB-1K task over two values (1e-4 and 5e-4). With
``train.supernet_lr_grid`` set, the workflow trains one supernet per rate on train800 and searches each on
val200 (runs ``seed<N>_lr<rate>``); this stage then keeps the rate whose searched subnet scores best on
val200 -- the same number the search maximises, never a test score -- and copies that candidate's train
and search outputs to the run itself (``seed<N>``), so export, evaluation, the tables and the figures read
it like any other run. Ties go to the rate listed first in the grid. The record
(``<exp>/select/<variant>/<task>/<run>.json``) lists every rate with its val200 scores: Table 5 of a run
with a grid is read from these records.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

from glora.atomic import atomic_path, write_json
from glora.errors import ConfigError, WeightsError

TRAIN_FILES = ("weights.safetensors", "metrics.json", "epochs.csv")
RUN_KEYS = ("method", "size", "task", "seed", "family", "shot")


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise WeightsError(f"{path} does not exist; train and search every rate of the grid first")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise WeightsError(f"{path} is not valid JSON ({err}); run the stage that wrote it again") from None


def candidate(best_path: str | Path) -> dict:
    """One rate of the grid: its search's ``best.json`` and the supernet's ``metrics.json`` beside its weights."""
    best_path = Path(best_path)
    best = _read_json(best_path)
    train_dir = Path(best["weights"]).parent
    metrics = _read_json(train_dir / "metrics.json")
    return {"lr": metrics["settings"]["lr"], "val_acc": best["val_acc"], "params": best["params"],
            "supernet_val_acc": metrics.get("final_val_acc"), "train": str(train_dir),
            "search": str(best_path.parent), "run": {k: best.get(k) for k in RUN_KEYS}}


def _copy(source: Path, target: Path) -> None:
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)


def run_select(candidates: Sequence[str | Path], train_out: str | Path, search_out: str | Path,
               out: str | Path) -> dict:
    """``python -m glora select``: keep the candidate (a search's ``best.json``) with the best val200 score;
    copy its train folder to ``train_out`` and its search folder to ``search_out``; write the record ``out``."""
    if not candidates:
        raise ConfigError("select needs at least one candidate (a search's best.json)")
    rows = [candidate(path) for path in candidates]
    runs = {json.dumps(row["run"], sort_keys=True) for row in rows}
    if len(runs) > 1:
        raise ConfigError(f"the candidates belong to different runs: {sorted(runs)}; select compares learning "
                         "rates of one run (method, size, task, seed)")
    best = max(range(len(rows)), key=lambda i: (rows[i]["val_acc"], -i))
    chosen = rows[best]
    train_out, search_out = Path(train_out), Path(search_out)
    for name in TRAIN_FILES:
        _copy(Path(chosen["train"]) / name, train_out / name)
    _copy(Path(chosen["search"]) / "candidates.csv", search_out / "candidates.csv")
    record = {"stage": "select", **chosen["run"], "criterion": "val200 top-1 of the searched subnet",
              "lr": chosen["lr"], "val_acc": chosen["val_acc"], "chosen": best,
              "grid": [{k: row[k] for k in ("lr", "val_acc", "params", "supernet_val_acc", "train", "search")}
                       for row in rows]}
    best_json = _read_json(Path(chosen["search"]) / "best.json")
    write_json(search_out / "best.json", {**best_json, "selected": {"record": str(out), "lr": chosen["lr"]}})
    write_json(out, record)
    return record
