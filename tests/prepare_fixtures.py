"""Small archives with the real layouts of the paper's sources (a few images per task and split), the split lists
in NOAH's format, a local ImageNet-1k, and a sources file pointing at a test server for all of them.

The loaders' tables are scaled down for these (:func:`small_tables`): the same 19 VTAB-1K task names and class
counts with split sizes 4/2/6/3, the same six few-shot names with 2 classes and shots 1 and 2 (ImageNet: 2).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path

import yaml
from PIL import Image

from glora.data import fewshot as fewshot_data
from glora.data import vtab as vtab_data
from glora.data.imagenet import timm_synsets

ROOT = Path(__file__).resolve().parents[1]
SMALL_VTAB = {"train800": 4, "val200": 2, "test": 3}


def jpeg(seed: int = 0) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (seed % 256, 40, 90)).save(buffer, "JPEG")
    return buffer.getvalue()


def small_tables(monkeypatch) -> None:
    """Scale the loaders' VTAB-1K and few-shot tables down (names and VTAB class counts unchanged)."""
    monkeypatch.setattr(vtab_data, "VTAB_TASKS", {
        name: dataclasses.replace(task, train_size=SMALL_VTAB["train800"], val_size=SMALL_VTAB["val200"],
                                  test_size=SMALL_VTAB["test"]) for name, task in vtab_data.VTAB_TASKS.items()})
    monkeypatch.setattr(fewshot_data, "FEWSHOT_SETS", {
        name: fewshot_data.FewShotSet(name, 2, shots=(2,) if name == "imagenet" else (1, 2), seeds=(0,))
        for name in fewshot_data.FEWSHOT_SETS})


def write_archive(path: Path, files: dict[str, bytes], extra: dict | None = None) -> Path:
    """A zip, tar, tar.gz or tgz (by suffix) holding ``files`` (member name -> bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".zip":
        with zipfile.ZipFile(path, "w") as zf:
            for name, data in files.items():
                zf.writestr(name, data)
        return path
    mode = "w:gz" if path.name.endswith((".tar.gz", ".tgz")) else "w"
    with tarfile.open(path, mode) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def vtab_members(tasks, prefix: str = "vtab-1k/") -> dict[str, bytes]:
    """NOAH's export of ``tasks``: <task>/images/<split>/<n>.jpg and <task>/<split>.txt."""
    files = {}
    for name in tasks:
        task = vtab_data.VTAB_TASKS[name]
        lines = {}
        for split in ("train800", "val200", "test"):
            size = task.sizes[split]
            lines[split] = [f"images/{split}/{i:06d}.jpg {i % task.num_classes}" for i in range(size)]
        lines["train800val200"] = [line.replace("images/train800/", "images/train800val200/") for line in
                                   lines["train800"]] + [
            f"images/train800val200/{i + task.sizes['train800']:06d}.jpg {i % task.num_classes}"
            for i in range(task.sizes["val200"])]
        for split, split_lines in lines.items():
            files[f"{prefix}{name}/{split}.txt"] = "".join(f"{line}\n" for line in split_lines).encode()
            for i, line in enumerate(split_lines):
                files[f"{prefix}{name}/{line.split()[0]}"] = jpeg(i)
    return files


# few-shot: each dataset's listed paths as NOAH writes them, and where its archive keeps them
FEWSHOT_LAYOUT = {
    "fgvc-aircraft": ("fgvc-aircraft-2013b.tar.gz", "fgvc-aircraft-2013b/data/images/", lambda c, i: f"{c}{i:06d}.jpg"),
    "food101": ("food-101.tar.gz", "food-101/images/", lambda c, i: f"{['apple_pie', 'baklava'][c]}/{i}.jpg"),
    "oxford-flowers102": ("102flowers.tgz", "jpg/", lambda c, i: f"image_{c}{i:04d}.jpg"),
    "oxford-pets": ("oxford-iiit-pet-images.tar.gz", "images/", lambda c, i: f"{['Abyssinian', 'beagle'][c]}_{i}.jpg"),
}


def fewshot_lists(name: str) -> dict[str, list[str]]:
    """NOAH's list files of a scaled dataset (2 classes): {file name: lines}; paths as in NOAH's lists."""
    record = fewshot_data.FEWSHOT_SETS[name]
    if name == "imagenet":
        wnids = timm_synsets()[:2]
        train = [f"{wnids[c]}/{wnids[c]}_{i}.JPEG" for i in range(4) for c in range(2)]
        test = [f"ILSVRC2012_val_{i:08d}.JPEG" for i in range(1, 3)]
    elif name == "standford-cars":
        train = [f"cars_train/{i:05d}.jpg" for i in range(1, 9)]
        test = [f"cars_test/{i:05d}.jpg" for i in range(1, 3)]
    else:
        path = FEWSHOT_LAYOUT[name][2]
        train = [path(c, i) for i in range(4) for c in range(2)]
        test = [path(c, 90 + i) for i in range(1) for c in range(2)]
    label = {p: k % 2 for k, p in enumerate(train)} | {p: k % 2 for k, p in enumerate(test)}
    lists = {}
    for shot in record.shots:
        for seed in record.seeds:
            chosen = train[: 2 * shot]
            lists[f"train_meta.list.num_shot_{shot}.seed_{seed}"] = [f"{p} {label[p]}" for p in chosen]
    lists["val_meta.list"] = [f"{p} {label[p]}" for p in train[-2:]]
    lists["test_meta.list"] = [f"{p} {label[p]}" for p in test]
    return lists


def build_mirror(folder: Path) -> dict:
    """Every source in ``folder`` (what the test server serves) plus a local ImageNet-1k; returns facts about it."""
    facts = {"splits": {}, "archives": {}}
    # VTAB-1K: the complete archive and one with only the first 12 tasks
    tasks = list(vtab_data.VTAB_TASKS)
    write_archive(folder / "vtab" / "vtab-1k.zip", vtab_members(tasks))
    write_archive(folder / "vtab12" / "vtab-1k.zip", vtab_members(tasks[:12]))
    # few-shot: NOAH's lists (ImageNet's renamed upstream as in NOAH: val_meta.list is the test set)
    for name in fewshot_data.FEWSHOT_SETS:
        for file, lines in fewshot_lists(name).items():
            upstream = file
            if name == "imagenet":
                upstream = {"test_meta.list": "val_meta.list",
                            "val_meta.list": "unofficial_val_list_4_shot16seed0"}.get(file, file)
            target = folder / "noah" / name / "annotations" / upstream
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("".join(f"{line}\n" for line in lines))
            facts["splits"][f"{name}/annotations/{file}"] = {
                "from": f"{name}/annotations/{upstream}", "sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
                "size": target.stat().st_size}
        lists = fewshot_lists(name)
        paths = sorted({line.rsplit(maxsplit=1)[0] for lines in lists.values() for line in lines})
        if name == "imagenet":
            for p in paths:
                where = folder / "imagenet-1k" / ("val" if p.startswith("ILSVRC") else "train") / p
                where.parent.mkdir(parents=True, exist_ok=True)
                where.write_bytes(jpeg(len(p)))
        elif name == "standford-cars":
            for split in ("cars_train", "cars_test"):
                write_archive(folder / "fewshot" / f"{split}.tgz",
                              {p: jpeg(len(p)) for p in paths if p.startswith(split)})
        else:
            file, prefix, _ = FEWSHOT_LAYOUT[name]
            write_archive(folder / "fewshot" / file, {f"{prefix}{p}": jpeg(len(p)) for p in paths}
                          | {f"{prefix.split('/')[0]}/README.txt": b"release notes\n"})
    # ImageNet variants: every class folder of the release, one image each
    wnids = timm_synsets()
    write_archive(folder / "imagenet" / "imagenetv2-matched-frequency.tar.gz",
                  {f"imagenetv2-matched-frequency-format-val/{i}/{i:040x}.jpeg": jpeg(i) for i in range(1000)})
    write_archive(folder / "imagenet" / "ImageNet-Sketch.zip",
                  {f"sketch/{w}/sketch_0.JPEG": jpeg(i) for i, w in enumerate(wnids)})
    for variant, file in (("imagenet_a", "imagenet-a.tar"), ("imagenet_r", "imagenet-r.tar")):
        top = file.removesuffix(".tar")
        classes = timm_synsets(f"{variant}_synsets.txt")
        write_archive(folder / "imagenet" / file, {f"{top}/{w}/0.jpg": jpeg(i) for i, w in enumerate(classes)}
                      | {f"{top}/README.txt": b"about\n"})
    for path in folder.rglob("*"):
        if path.is_file() and path.parent.name != "annotations":
            facts["archives"][str(path.relative_to(folder))] = {
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "size": path.stat().st_size}
    return facts


def sources_for(base: str, facts: dict, *, pin: bool = True, **settings) -> dict:
    """The repository's sources file with every URL pointed at ``base`` (a test server or a file:// folder)."""
    sources = yaml.safe_load((ROOT / "config" / "sources.yaml").read_text())
    sources["settings"] = {"timeout_s": 2, "retries": 1, **settings}

    def archive(rel: str, unpack=None) -> dict:
        spec = {"file": Path(rel).name, "urls": [base + rel]}
        if pin:
            spec.update(facts["archives"][rel])
        if unpack is not None:
            spec["unpack"] = unpack
        return spec

    sources["vtab"]["archive"] = archive("vtab/vtab-1k.zip")
    sources["vtab"]["archive"].update(sha256=None, size=None)  # as in the real file: nothing published
    sources["fewshot"]["splits"] = {"urls": [base + "noah/"], "licence": "MIT", "files": facts["splits"]}
    datasets = sources["fewshot"]["datasets"]
    for name, (file, prefix, _) in FEWSHOT_LAYOUT.items():
        datasets[name]["archives"] = [archive(f"fewshot/{file}", {prefix: ""})]
    datasets["standford-cars"]["archives"] = [archive(f"fewshot/{s}.tgz", {f"{s}/": f"{s}/"})
                                              for s in ("cars_train", "cars_test")]
    variants = sources["imagenet"]["variants"]
    for variant, file, prefix in (("imagenet_v2", "imagenetv2-matched-frequency.tar.gz",
                                   "imagenetv2-matched-frequency-format-val/"),
                                  ("imagenet_sketch", "ImageNet-Sketch.zip", "sketch/"),
                                  ("imagenet_a", "imagenet-a.tar", "imagenet-a/"),
                                  ("imagenet_r", "imagenet-r.tar", "imagenet-r/")):
        variants[variant]["archives"] = [archive(f"imagenet/{file}", {prefix: ""})]
    return sources


def write_yaml(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(json.loads(json.dumps(data)), sort_keys=False))
    return path
