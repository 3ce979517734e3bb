"""Table 2's LLaMA weights: gated, so nothing is downloaded; a local Hugging Face folder is checked.

A folder passes when it has ``config.json`` (a ``llama`` model), a tokenizer (``tokenizer.model`` or
``tokenizer.json``) and weights (``*.safetensors`` or ``pytorch_model*.bin``; with an index file, every shard
it lists). The error names every missing file and the manual steps from the sources file (``llm.manual``).
"""

from __future__ import annotations

import json
from pathlib import Path

from glora.data.prepare.sources import PrepareError, Sources

INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


def problems(folder: str | Path) -> list[str]:
    """What ``folder`` lacks to be loaded with ``from_pretrained`` as a LLaMA model."""
    folder = Path(folder)
    if not folder.is_dir():
        return [f"{folder}: folder not found"]
    found = []
    config = folder / "config.json"
    if not config.is_file():
        found.append(f"{config}: not found")
    else:
        try:
            model_type = json.loads(config.read_text()).get("model_type")
        except (json.JSONDecodeError, AttributeError) as err:
            found.append(f"{config}: not a JSON object ({err})")
        else:
            if model_type != "llama":
                found.append(f"{config}: model_type is {model_type!r}, not 'llama'")
    if not any((folder / name).is_file() for name in ("tokenizer.model", "tokenizer.json")):
        found.append(f"{folder}: no tokenizer (tokenizer.model or tokenizer.json)")
    index = next((folder / name for name in INDEXES if (folder / name).is_file()), None)
    if index is not None:
        try:
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (json.JSONDecodeError, KeyError, AttributeError) as err:
            found.append(f"{index}: no weight_map ({type(err).__name__}: {err})")
        else:
            found += [f"{folder / s}: not found (listed in {index.name})" for s in shards if not (folder / s).is_file()]
    elif not (list(folder.glob("*.safetensors")) or list(folder.glob("pytorch_model*.bin"))):
        found.append(f"{folder}: no weights (*.safetensors or pytorch_model*.bin)")
    return found


def check(models: dict[str, str], sources: Sources | None) -> dict:
    """``{name: folder}`` checked; a report, or a :class:`PrepareError` naming every missing file."""
    found = {name: problems(folder) for name, folder in models.items()}
    bad = [p for name in models for p in found[name]]
    if bad:
        manual = (sources.data.get("llm") or {}).get("manual", "") if sources is not None else ""
        raise PrepareError(f"{len(bad)} problem(s) with the LLaMA folders (experiments.llm.models):\n"
                           + "\n".join(f"  {p}" for p in bad) + (f"\n{manual}" if manual else ""))
    return {"family": "llama", "models": {name: str(Path(folder)) for name, folder in models.items()}}
