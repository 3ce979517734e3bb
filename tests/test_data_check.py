"""`check_dataset` and `python -m glora data check`: manifests of good folders, one clear error for broken ones."""

import hashlib
import io
import json

import numpy as np
import pytest
from PIL import Image

from glora.cli import main
from glora.data import DataError, check_dataset
from glora.data.check import MINI_HINT

SIZES = {"train800": 4, "val200": 2, "train800val200": 6, "test": 3}


def write_image(path, mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (8, 8), 100 if mode in ("L", "P") else (10, 20, 30, 40)[: len(mode)]).save(
        path, "JPEG" if path.suffix == ".jpg" else None)


def write_truncated_jpeg(path):
    noise = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, "JPEG")
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) * 3 // 4])


def write_list(path, lines, crlf=False):
    path.write_bytes("".join(f"{line}  {chr(13) if crlf else ''}\n" for line in lines).encode())


@pytest.fixture
def mini_vtab(tmp_path):
    """A VTAB-layout mini suite: task `digits` (3 classes; 4/2/6/3 images), CRLF lists, L/P/CMYK/RGB images."""
    root = tmp_path / "vtab"
    (root / "digits").mkdir(parents=True)
    (root / "suite.json").write_text(json.dumps({"family": "vtab", "tasks": {"digits": {
        "num_classes": 3, "group": "structured", "sizes": SIZES}}}))
    modes = ["RGB", "L", "P", "CMYK", "RGB", "L", "RGB", "P", "RGB"]
    for i, mode in enumerate(modes):
        write_image(root / "digits" / "images" / f"{i}.{'jpg' if mode in ('CMYK', 'RGB') else 'png'}", mode)
    names = [f"images/{i}.{'jpg' if mode in ('CMYK', 'RGB') else 'png'}" for i, mode in enumerate(modes)]
    lines = [f"{name} {i % 3}" for i, name in enumerate(names)]
    for split, part in {"train800": lines[:4], "val200": lines[4:6], "train800val200": lines[:6],
                        "test": lines[6:]}.items():
        write_list(root / "digits" / f"{split}.txt", part, crlf=True)
    return root


def test_a_good_folder_gives_its_manifest(mini_vtab):
    manifest = check_dataset("vtab", mini_vtab)
    assert manifest["family"] == "vtab" and manifest["root"] == str(mini_vtab.resolve())
    assert manifest["decoded"] is True and manifest["images"] == 9
    assert manifest["suite_sha256"] == hashlib.sha256((mini_vtab / "suite.json").read_bytes()).hexdigest()
    task = manifest["tasks"]["digits"]
    assert task["group"] == "structured" and task["num_classes"] == 3 and task["warnings"] == []
    assert {split: s["images"] for split, s in task["splits"].items()} == SIZES
    assert task["splits"]["val200"]["classes_seen"] == 2 and task["splits"]["test"]["classes_seen"] == 3
    test_list = (mini_vtab / "digits" / "test.txt").read_bytes()
    assert task["splits"]["test"] == {"file": "test.txt", "sha256": hashlib.sha256(test_list).hexdigest(),
                                      "images": 3, "classes_seen": 3}
    assert json.loads(json.dumps(manifest)) == manifest


def test_a_broken_folder_is_one_error_naming_each_file_and_line(mini_vtab):
    task = mini_vtab / "digits"
    write_truncated_jpeg(task / "images" / "0.jpg")
    write_list(task / "val200.txt", ["images/4.jpg 1", "images/gone.jpg 2", "images/5.png 7"])
    write_list(task / "test.txt", ["images/6.jpg 0", "images/7.png", "images/1.png 1", "images/8.jpg zero"])
    with pytest.raises(DataError) as err:
        check_dataset("vtab", mini_vtab)
    message = str(err.value)
    assert message.startswith("9 problems:\n")
    for problem in [f"{task / 'val200.txt'}:2: image not found: {task / 'images' / 'gone.jpg'}",
                    f"{task / 'val200.txt'}:3: label 7 outside [0, 3)",
                    f"{task / 'val200.txt'}: 3 lines, expected 2",
                    f"{task / 'test.txt'}:2: expected '<path> <int label>', got 'images/7.png' (no label)",
                    f"{task / 'test.txt'}:4: label 'zero' is not an integer",
                    f"{task / 'test.txt'}: 2 lines, expected 3",
                    f"{task / 'test.txt'}:3: images/1.png is also in the training list {task / 'train800.txt'}:2",
                    f"{task / 'test.txt'}:3: images/1.png is also in the training list "
                    f"{task / 'train800val200.txt'}:2",
                    f"{task / 'train800.txt'}:1: cannot decode {task / 'images' / '0.jpg'}: OSError: image file is "
                    "truncated"]:
        assert problem in message
    assert f"{task / 'train800val200.txt'}: not the union" not in message  # a warning, not a problem
    assert message.endswith(MINI_HINT)


def test_no_decode_skips_decoding_but_not_the_rest(mini_vtab):
    write_truncated_jpeg(mini_vtab / "digits" / "images" / "0.jpg")
    assert check_dataset("vtab", mini_vtab, decode=False)["decoded"] is False
    (mini_vtab / "digits" / "images" / "0.jpg").unlink()
    with pytest.raises(DataError, match="train800.txt:1: image not found: .*0.jpg"):
        check_dataset("vtab", mini_vtab, decode=False)


def test_paper_vtab_folder_errors_say_how_to_get_the_data(tmp_path):
    (tmp_path / "kitti").mkdir()
    write_image(tmp_path / "kitti" / "a.jpg")
    write_list(tmp_path / "kitti" / "train800.txt", ["a.jpg 3"])
    with pytest.raises(DataError) as err:
        check_dataset("vtab", tmp_path)  # only kitti is there: the other 18 are not asked for
    message = str(err.value)
    assert f"{tmp_path / 'kitti' / 'train800.txt'}: 1 lines, expected 800" in message
    assert f"{tmp_path / 'kitti' / 'test.txt'}: list file not found" in message and "cifar" not in message
    assert "the VTAB-1K export used by NOAH/FacT (vtab-1k.zip), or build it from TFDS with the VTAB scripts" in message
    with pytest.raises(DataError, match=r"unknown task\(s\) \['kitty'\] .*; known: \['cifar', 'caltech101'"):
        check_dataset("vtab", tmp_path, tasks=["kitty"])
    with pytest.raises(DataError, match="none of the expected folders is there; expected some of"):
        check_dataset("fewshot", tmp_path)
    with pytest.raises(DataError, match=f"{tmp_path / 'nothing'}: folder not found\nTo obtain"):
        check_dataset("vtab", tmp_path / "nothing")


@pytest.fixture
def mini_fewshot(tmp_path):
    """A few-shot mini suite: `toy` (3 classes, shots 1 and 2, seed 0) whose 1-shot list repeats a line."""
    root = tmp_path / "fewshot"
    (root / "toy" / "annotations").mkdir(parents=True)
    (root / "suite.json").write_text(json.dumps({"family": "fewshot", "datasets": {"toy": {
        "num_classes": 3, "shots": [1, 2], "seeds": [0]}}}))
    for i in range(9):
        write_image(root / "toy" / "images" / f"{i}.png", "L")
    ann = root / "toy" / "annotations"
    write_list(ann / "train_meta.list.num_shot_1.seed_0", ["images/0.png 0", "images/1.png 1", "images/1.png 1",
                                                           "images/2.png 2"], crlf=True)
    write_list(ann / "train_meta.list.num_shot_2.seed_0", [f"images/{i}.png {i % 3}" for i in range(6)])
    write_list(ann / "val_meta.list", ["images/6.png 0"])
    write_list(ann / "test_meta.list", ["images/7.png 1", "images/8.png 2"])
    return root


def test_fewshot_duplicates_are_warnings_and_counts_are_shot_times_classes(mini_fewshot):
    manifest = check_dataset("fewshot", mini_fewshot)
    toy = manifest["tasks"]["toy"]
    ann = mini_fewshot / "toy" / "annotations"
    assert toy["warnings"] == [f"{ann / 'train_meta.list.num_shot_1.seed_0'}:3: duplicate of line 2 (images/1.png)"]
    assert list(toy["splits"]) == ["train_shot1_seed0", "train_shot2_seed0", "val", "test"]
    assert toy["splits"]["train_shot1_seed0"]["file"] == "annotations/train_meta.list.num_shot_1.seed_0"
    assert toy["splits"]["train_shot1_seed0"]["images"] == 4 and toy["splits"]["train_shot2_seed0"]["images"] == 6
    assert manifest["images"] == 9 and (toy["shots"], toy["seeds"]) == ([1, 2], [0])
    write_list(ann / "train_meta.list.num_shot_2.seed_0", [f"images/{i}.png {i % 3}" for i in range(5)] +
               ["images/8.png 2"])
    (ann / "val_meta.list").unlink()
    with pytest.raises(DataError) as err:
        check_dataset("fewshot", mini_fewshot)
    assert str(err.value).startswith("2 problems:\n")
    assert (f"{ann / 'test_meta.list'}:2: images/8.png is also in the training list "
            f"{ann / 'train_meta.list.num_shot_2.seed_0'}:6") in str(err.value)
    assert f"{ann / 'val_meta.list'}: list file not found" in str(err.value)


def test_fewshot_paper_hint_and_wrong_counts(tmp_path):
    ann = tmp_path / "fgvc-aircraft" / "annotations"
    ann.mkdir(parents=True)
    write_image(tmp_path / "fgvc-aircraft" / "a.jpg")
    write_list(ann / "train_meta.list.num_shot_1.seed_0", ["a.jpg 99"])
    with pytest.raises(DataError) as err:
        check_dataset("fewshot", tmp_path, tasks=["fgvc-aircraft"], decode=False)
    message = str(err.value)
    assert f"{ann / 'train_meta.list.num_shot_1.seed_0'}: 1 lines, expected 100" in message
    assert f"{ann / 'train_meta.list.num_shot_16.seed_2'}: list file not found" in message
    assert message.endswith("use `python -m glora prepare fewshot` (docs/data.md) or the few-shot splits of NOAH / "
                            "CoOp; each <root>/<dataset>/annotations/ needs "
                            "train_meta.list.num_shot_{K}.seed_{S}, val_meta.list and test_meta.list.")


def test_imagenet_variant_check(tmp_path):
    sketch = tmp_path / "imagenet_sketch"
    for wnid in ("n01", "n03"):
        write_image(sketch / wnid / "a.JPEG")
    (sketch / "synsets.txt").write_text("n01\nn02\nn03\n")
    manifest = check_dataset("imagenet", tmp_path)
    listing = "n01/a.JPEG 0\nn03/a.JPEG 2\n"
    assert manifest["tasks"] == {"imagenet_sketch": {
        "num_classes": 3, "synsets": "synsets.txt", "warnings": [],
        "splits": {"test": {"images": 2, "classes_seen": 2,
                            "listing_sha256": hashlib.sha256(listing.encode()).hexdigest()}}}}
    write_truncated_jpeg(sketch / "n03" / "a.JPEG")
    (sketch / "n99").mkdir()
    with pytest.raises(DataError) as err:
        check_dataset("imagenet", tmp_path, tasks=["imagenet_sketch", "imagenet_r"])
    message = str(err.value)
    assert f"{sketch / 'n99'}: folder name is not a known wnid" in message
    assert f"cannot decode {sketch / 'n03' / 'a.JPEG'}: OSError: image file is truncated" in message
    assert f"{tmp_path / 'imagenet_r'}: folder not found; expected ImageNet-R (imagenet-r.tar" in message


def test_cli_data_check_writes_the_manifest_or_fails_in_one_line(mini_vtab, tmp_path, capsys):
    out = tmp_path / "manifests" / "vtab.json"
    assert main(["data", "check", "--family", "vtab", "--root", str(mini_vtab), "--manifest", str(out)]) == 0
    assert json.loads(out.read_text()) == check_dataset("vtab", mini_vtab)
    assert f"manifest written to {out}" in capsys.readouterr().out
    write_list(mini_vtab / "digits" / "test.txt", ["images/6.jpg 0", "images/7.png 1", "images/8.jpg 9"])
    assert main(["data", "check", "--family", "vtab", "--root", str(mini_vtab), "--task", "digits"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {mini_vtab / 'digits' / 'test.txt'}:3: label 9 outside [0, 3)\n")


def test_vtab_consistency_notes_are_warnings(mini_vtab):
    task = mini_vtab / "digits"
    write_image(task / "images" / "9.png", "L")
    write_list(task / "val200.txt", ["images/4.jpg 1", "images/9.png 2"])
    write_list(task / "train800.txt", ["images/0.jpg 0", "images/1.png 1", "images/2.png 2", "images/0.jpg 0"])
    warnings = check_dataset("vtab", mini_vtab)["tasks"]["digits"]["warnings"]
    assert warnings == [f"{task / 'train800.txt'}:4: duplicate of line 1 (images/0.jpg)",
                        f"{task / 'train800val200.txt'}: not the union of train800.txt and val200.txt"]
