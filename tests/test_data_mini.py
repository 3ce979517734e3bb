"""The embedded mini suite: layouts and manifests, list sizes, class balance, no leakage, determinism, and
labels that carry signal (a raw-pixel classifier beats chance on every VTAB-style task)."""

import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from glora.cli import main
from glora.data import mini, mini_fewshot, mini_objects, mini_tasks, scenes

PER_CLASS = 5  # upstream images per class in these tests (the default is 100)
PAPER_VTAB = {"cifar", "caltech101", "dtd", "oxford_flowers102", "oxford_iiit_pet", "svhn", "sun397",
              "patch_camelyon", "eurosat", "resisc45", "diabetic_retinopathy", "clevr_count", "clevr_dist", "dmlab",
              "kitti", "dsprites_loc", "dsprites_ori", "smallnorb_azi", "smallnorb_ele"}


@pytest.fixture(scope="module")
def suite(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mini") / "suite"
    summary = mini.generate(out, seed=0, upstream_per_class=PER_CLASS, quiet=True)
    assert summary["out"] == str(out) and summary["seconds"] > 0
    return out


def read_list(path: Path) -> list[tuple[str, int]]:
    return [(p, int(label)) for p, label in (line.rsplit(maxsplit=1) for line in path.read_text().splitlines())]


def assert_balanced(entries: list[tuple[str, int]], num_classes: int, where: str) -> None:
    counts = Counter(label for _, label in entries)
    assert set(counts) == set(range(num_classes)), where
    assert max(counts.values()) - min(counts.values()) <= 1, f"{where}: {counts}"


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_vtab_manifest_lists_and_balance(suite):
    manifest = json.loads((suite / "vtab" / "suite.json").read_text())
    assert manifest["family"] == "vtab"
    tasks = manifest["tasks"]
    assert len(tasks) >= 7 and {r["group"] for r in tasks.values()} == {"natural", "specialized", "structured"}
    assert not set(tasks) & PAPER_VTAB  # own definitions, own names
    for name, record in tasks.items():
        assert set(record) == {"num_classes", "group", "sizes", "description"}
        sizes, k = record["sizes"], record["num_classes"]
        assert sizes["train800"] == 800 and sizes["val200"] == 200 and sizes["train800val200"] == 1000
        assert sizes["test"] >= 500
        lists = {split: read_list(suite / "vtab" / name / f"{split}.txt") for split in sizes}
        for split, entries in lists.items():
            assert len(entries) == sizes[split], (name, split)
            assert all(0 <= label < k for _, label in entries)
            if split != "train800val200":  # the union of two balanced lists may be off by two
                assert_balanced(entries, k, f"{name}/{split}")
        assert sorted(lists["train800val200"]) == sorted(lists["train800"] + lists["val200"])
        train_paths = {p for p, _ in lists["train800val200"]}
        assert len(train_paths) == 1000 and not train_paths & {p for p, _ in lists["test"]}


def test_every_listed_image_is_a_32x32_rgb_png(suite):
    listed = [(suite / "upstream", f) for f in ("train.txt", "val.txt")]
    listed += [(t, f"{s}.txt") for t in (suite / "vtab").iterdir() if t.is_dir() for s in ("train800val200", "test")]
    listed += [(d, f"annotations/{s}_meta.list") for d in (suite / "fewshot").iterdir() if d.is_dir()
               for s in ("val", "test")]
    listed += [(d, "annotations/train_meta.list.num_shot_16.seed_0") for d in (suite / "fewshot").iterdir()
               if d.is_dir()]
    images = [base / path for base, name in listed for path, _ in read_list(base / name)]
    images += sorted((suite / "imagenet_variants").rglob("*.png"))
    assert len(images) > 15000
    for path in images:
        with Image.open(path) as image:
            assert (image.format, image.size, image.mode) == ("PNG", (32, 32), "RGB"), path
            assert not image.info, path  # no text chunks, no timestamps
            image.load()  # decodes: every chunk's CRC and the zlib stream are checked


def test_fewshot_lists_have_exactly_k_per_class(suite):
    manifest = json.loads((suite / "fewshot" / "suite.json").read_text())
    assert manifest["family"] == "fewshot" and len(manifest["datasets"]) >= 4 and "imagenet" in manifest["datasets"]
    for name, record in manifest["datasets"].items():
        folder, k = suite / "fewshot" / name, record["num_classes"]
        assert record["seeds"] == [0, 1, 2]
        assert record["shots"] == ([16] if name == "imagenet" else [1, 2, 4, 8, 16])
        test = read_list(folder / "annotations" / "test_meta.list")
        val = read_list(folder / "annotations" / "val_meta.list")
        assert_balanced(test, k, f"{name}/test")
        assert_balanced(val, k, f"{name}/val")
        held_out = {p for p, _ in test + val}
        for seed in record["seeds"]:
            previous: set = set()
            for shot in record["shots"]:
                entries = read_list(folder / "annotations" / f"train_meta.list.num_shot_{shot}.seed_{seed}")
                assert Counter(label for _, label in entries) == {c: shot for c in range(k)}, (name, shot, seed)
                paths = {p for p, _ in entries}
                assert len(paths) == len(entries) and previous <= paths and not paths & held_out
                assert all((folder / p).is_file() for p in paths)
                previous = paths
        sixteen = [read_list(folder / "annotations" / f"train_meta.list.num_shot_16.seed_{s}") for s in (0, 1)]
        assert sixteen[0] != sixteen[1]  # seeds draw different images


def test_imagenet_variants_share_the_source_wnids(suite):
    k = json.loads((suite / "fewshot" / "suite.json").read_text())["datasets"]["imagenet"]["num_classes"]
    wnids = (suite / "fewshot" / "imagenet" / "synsets.txt").read_text().split()
    assert len(wnids) == len(set(wnids)) == k and 10 <= k <= 20
    assert all(len(w) == 9 and w[0] == "n" and w[1:].isdigit() for w in wnids)
    variants = suite / "imagenet_variants"
    assert sorted(p.name for p in variants.iterdir()) == ["imagenet_a", "imagenet_r", "imagenet_sketch", "imagenet_v2"]
    for variant in variants.iterdir():
        assert (variant / "synsets.txt").read_text().split() == wnids
        folders = {p.name for p in variant.iterdir() if p.is_dir()}
        expected = {str(i) for i in range(k)} if variant.name == "imagenet_v2" else set(wnids)
        assert folders <= expected and all(any((variant / f).glob("*.png")) for f in folders)
        assert (folders == expected) == (variant.name in ("imagenet_v2", "imagenet_sketch")), variant.name


def test_upstream_has_many_named_classes(suite):
    classes = json.loads((suite / "upstream" / "classes.json").read_text(encoding="utf-8"))
    assert len(classes) >= 100 and list(classes) == [str(i) for i in range(len(classes))]
    assert len(set(classes.values())) == len(classes)
    train, val = (read_list(suite / "upstream" / f"{s}.txt") for s in ("train", "val"))
    assert Counter(label for _, label in train) == {c: PER_CLASS for c in range(len(classes))}
    assert_balanced(val, len(classes), "upstream/val")
    assert not {p for p, _ in train} & {p for p, _ in val}
    summary = json.loads((suite / "mini.json").read_text())
    assert summary["upstream"] == {"classes": len(classes), "train": len(train), "val": len(val)}


def test_same_seed_gives_identical_bytes(suite, tmp_path):
    again = tmp_path / "again"
    mini.generate(again, seed=0, upstream_per_class=PER_CLASS, quiet=True)
    first, second = tree_digest(suite), tree_digest(again)
    assert len(first) > 15000 and first == second


def test_seed_changes_every_task():
    labels = np.arange(8) % 2
    for name, task in mini_tasks.TASKS.items():
        a, b = (task.render(mini.stream(seed, "vtab", name), labels, "test") for seed in (0, 1))
        assert not np.array_equal(a, b), name
    for name, task in mini_fewshot.FEWSHOT.items():
        a, b = (task.render(mini.stream(seed, "fewshot", name), labels, "test") for seed in (0, 1))
        assert not np.array_equal(a, b), name
    a, b = (mini_objects.render_upstream(mini.stream(seed, "upstream"), labels) for seed in (0, 1))
    assert not np.array_equal(a, b)


def footprints_by_split(folder: Path, split_of: dict[str, str]) -> dict[str, list[tuple]]:
    """``sources.csv`` of a generated task as split -> [(source, x0, y0, x1, y1)] (``split_of``: image -> split)."""
    import csv

    out: dict[str, list[tuple]] = {split: [] for split in set(split_of.values())}
    with (folder / "sources.csv").open() as f:
        for row in csv.DictReader(f):
            out[split_of[row["image"]]].append((row["source"], *(float(row[k]) for k in ("x0", "y0", "x1", "y1"))))
    return out


def overlapping(a: list[tuple], b: list[tuple]) -> list[tuple[tuple, tuple]]:
    """Pairs of footprints of ``a`` and ``b`` on the same source whose boxes intersect."""
    pairs = []
    for source in {f[0] for f in a} & {f[0] for f in b}:
        boxes_a = np.array([f[1:] for f in a if f[0] == source])
        boxes_b = np.array([f[1:] for f in b if f[0] == source])
        hit = ((boxes_a[:, None, 0] < boxes_b[None, :, 2]) & (boxes_b[None, :, 0] < boxes_a[:, None, 2])
               & (boxes_a[:, None, 1] < boxes_b[None, :, 3]) & (boxes_b[None, :, 1] < boxes_a[:, None, 3]))
        pairs += [((source, *boxes_a[i]), (source, *boxes_b[j])) for i, j in zip(*np.nonzero(hit))][:3]
    return pairs


def test_val200_shares_no_source_region_with_train800_or_test(suite):
    """Every mini task's val200 is held out: no pixel of a source photo (resampling reach included), no source
    image and no source digit is used by two of train800 / val200 / test; procedural tasks crop nothing, every
    other task records a source for every image. The few-shot sets keep their pool / val / test apart too."""
    checked = []
    vtab = {"train800": "train800.txt", "val200": "val200.txt", "test": "test.txt"}
    for family, sets in (("vtab", mini_tasks.TASKS), ("fewshot", mini_fewshot.FEWSHOT)):
        for name, task in sets.items():
            folder = suite / family / name
            if family == "vtab":
                split_of = {n: split for split, path in vtab.items() for n, _ in read_list(folder / path)}
            else:  # the training pool (every K-shot list draws from it), val and test
                split_of = {str(p.relative_to(folder)): p.parent.name for p in (folder / "images").rglob("*.png")}
            by_split = footprints_by_split(folder, split_of)
            counted = sum(len(v) for v in by_split.values())
            if task.procedural:
                assert counted == 0, f"{name} is procedural but records sources"
                continue
            assert counted >= len(split_of), f"{name}: an image without a recorded source"
            splits = sorted(by_split)
            assert len(splits) == 3, (name, splits)
            for i, a in enumerate(splits):
                for b in splits[i + 1:]:
                    pairs = overlapping(by_split[a], by_split[b])
                    assert not pairs, (name, a, b, pairs)
            checked.append(name)
    assert set(checked) >= {"digits", "textures", "faces", "specimen", "ihc_marker", "lesion_grade", "textures_mini"}


def test_overlapping_footprints_are_found():
    """The overlap check of the test above finds what it should (a test that cannot fail is a defect)."""
    a = [("x.png", 0.0, 0.0, 10.0, 10.0), ("sklearn digits", 5.0, 0.0, 6.0, 1.0)]
    assert overlapping(a, [("x.png", 9.0, 9.0, 20.0, 20.0)])
    assert overlapping(a, [("sklearn digits", 5.0, 0.0, 6.0, 1.0)])
    assert not overlapping(a, [("x.png", 10.0, 0.0, 20.0, 10.0), ("y.png", 0.0, 0.0, 10.0, 10.0),
                               ("sklearn digits", 6.0, 0.0, 7.0, 1.0)])


def test_crops_stay_inside_their_region():
    halves = np.zeros((100, 200, 3), np.uint8)
    halves[:, 100:] = 255
    rng = np.random.default_rng(0)
    assert scenes.crops(rng, halves, 50, (0.2, 0.45), mini_objects.REGIONS["train"]).max() == 0
    assert scenes.crops(rng, halves, 50, (0.2, 0.45), mini_objects.REGIONS["val"]).min() == 1
    with pytest.raises(ValueError, match="do not fit region"):
        scenes.crops(rng, halves, 5, (0.2, 0.5), mini_objects.REGIONS["val"])  # 50 px crops, a 47 px tall region
    corners = mini_tasks.ihc_candidates()
    assert all(len(c) > 100 for part in corners.values() for c in part)


def test_raw_pixel_classifier_beats_chance_on_every_task(suite):
    from sklearn.linear_model import RidgeClassifier

    def features(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
        entries = read_list(folder / f"{split}.txt")
        x = np.stack([np.asarray(Image.open(folder / p), np.float32) / 255 for p, _ in entries])
        grey = x.mean(-1)
        spectrum = np.log1p(np.abs(np.fft.fft2(grey - grey.mean(axis=(1, 2), keepdims=True))))  # shift-invariant
        pixels_and_spectrum = np.concatenate([x.reshape(len(x), -1), spectrum.reshape(len(x), -1)], 1)
        return pixels_and_spectrum, np.array([label for _, label in entries])

    scores = {}
    for name, record in json.loads((suite / "vtab" / "suite.json").read_text())["tasks"].items():
        (x_train, y_train), (x_test, y_test) = (features(suite / "vtab" / name, s) for s in ("train800", "test"))
        mean, std = x_train.mean(0), x_train.std(0) + 1e-6
        model = RidgeClassifier(alpha=10.0).fit((x_train - mean) / std, y_train)
        scores[name] = (model.score((x_test - mean) / std, y_test), 1 / record["num_classes"])
    assert all(accuracy >= 1.3 * chance for accuracy, chance in scores.values()), scores


def test_refuses_a_folder_that_is_not_a_suite(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["data", "mini", "--out", str(tmp_path), "--quiet"]) == 2
    assert "is not a mini suite (no mini.json)" in capsys.readouterr().err
    with pytest.raises(ValueError, match="upstream_per_class must be >= 1"):
        mini.generate(tmp_path / "new", upstream_per_class=0)


def test_a_killed_run_leaves_no_suite(tmp_path, monkeypatch):
    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(mini, "write_vtab", killed)
    with pytest.raises(KeyboardInterrupt):
        mini.generate(tmp_path / "suite", upstream_per_class=1, quiet=True)
    assert not (tmp_path / "suite").exists() and (tmp_path / "suite.tmp" / "upstream").is_dir()


def test_the_loaders_read_the_manifests(suite):
    from glora.data.fewshot import fewshot_sets
    from glora.data.vtab import vtab_tasks

    tasks = vtab_tasks(suite / "vtab")
    assert set(tasks) == set(mini_tasks.TASKS)
    assert tasks["digits"].num_classes == 10 and tasks["digits"].test_size == 500
    sets = fewshot_sets(suite / "fewshot")
    assert set(sets) == set(mini_fewshot.FEWSHOT) and sets["imagenet"].shots == (16,)


def test_parts_write_only_what_is_asked(tmp_path):
    """The workflow writes the upstream set apart (rule mini_upstream, only pre-training reads it) from the
    downstream sets (rule mini_data); each folder is a suite of its own, and the parts are the same bytes."""
    up = mini.generate(tmp_path / "up", seed=0, upstream_per_class=2, quiet=True, parts=("upstream",))
    assert sorted(p.name for p in (tmp_path / "up").iterdir()) == ["mini.json", "upstream"]
    assert up["parts"] == ["upstream"] and up["upstream"]["classes"] == 142 and "vtab" not in up
    down = mini.generate(tmp_path / "down", seed=0, quiet=True, parts=("imagenet_variants",))
    assert sorted(p.name for p in (tmp_path / "down").iterdir()) == ["imagenet_variants", "mini.json"]
    assert "upstream_per_class" not in down
    whole = mini.generate(tmp_path / "whole", seed=0, upstream_per_class=2, quiet=True,
                          parts=("upstream", "imagenet_variants"))
    assert whole["images"] == up["images"] + down["images"]
    assert tree_digest(tmp_path / "whole" / "upstream") == tree_digest(tmp_path / "up" / "upstream")
    variants = "imagenet_variants"
    assert tree_digest(tmp_path / "whole" / variants) == tree_digest(tmp_path / "down" / variants)
    with pytest.raises(ValueError, match="unknown or no parts"):
        mini.generate(tmp_path / "bad", parts=("upstreams",))
