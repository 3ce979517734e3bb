"""Dataset loaders: list parsing, image modes, transforms from the backbone record, `build` for each family."""

import io
import json
import random

import numpy as np
import pytest
import torch
from PIL import Image
from timm.data import Mixup

from glora.data import FEWSHOT_SETS, GROUPS, VTAB_TASKS, DataError, FewShotRecipe, build, imagenet_synsets
from glora.data.imagenet import timm_synsets
from glora.data.lists import parse_list, read_list

PINK = (255, 0, 128)


def write_image(path, mode="RGB", size=(8, 8), color=PINK):
    """A uniform image in ``mode`` (L: gray 100; P: palette colour PINK; CMYK: written as JPEG)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "L":
        Image.new("L", size, 100).save(path)
    elif mode == "P":
        image = Image.new("P", size, 3)
        image.putpalette([0, 0, 0] * 3 + list(color) + [0, 0, 0] * 252)
        image.save(path)
    elif mode == "CMYK":
        Image.new("CMYK", size, (0, 255, 127, 0)).save(path, "JPEG")
    else:
        Image.new(mode, size, color if mode == "RGB" else (*color, 255)).save(path)


def write_truncated_jpeg(path):
    """A valid 32x32 noise JPEG cut to 3/4 of its bytes: PIL opens (and verifies) it, decoding fails."""
    noise = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, "JPEG")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) * 3 // 4])


def normalised(value, mean=0.5, std=0.5):
    return (value / 255 - mean) / std


def test_vtab_table_matches_the_paper():
    assert len(VTAB_TASKS) == 19
    assert [sum(t.group == g for t in VTAB_TASKS.values()) for g in GROUPS] == [7, 4, 8]
    assert [t.num_classes for t in VTAB_TASKS.values()] == [100, 102, 47, 102, 37, 10, 397, 2, 10, 45, 5, 8, 6, 6,
                                                            4, 16, 16, 18, 9]
    assert VTAB_TASKS["kitti"].sizes == {"train800": 800, "val200": 200, "train800val200": 1000, "test": 711}
    assert VTAB_TASKS["dsprites_loc"].test_size == 73728 and VTAB_TASKS["cifar"].group == "natural"
    assert FEWSHOT_SETS["standford-cars"].num_classes == 196 and FEWSHOT_SETS["imagenet"].shots == (16,)


def test_list_parsing_tolerates_crlf_trailing_spaces_and_blank_lines(tmp_path):
    lists = tmp_path / "train800.txt"
    lists.write_bytes(b"images/a.jpg 0\r\nimages/b c.jpg 12   \r\n\r\n   \r\nimages/d.png\t3\r\n")
    entries, problems = parse_list(lists)
    assert problems == []
    assert [tuple(e) for e in entries] == [("images/a.jpg", 0, 1), ("images/b c.jpg", 12, 2), ("images/d.png", 3, 5)]


def test_malformed_lines_and_bad_labels_name_file_and_line(tmp_path):
    lists = tmp_path / "test.txt"
    lists.write_text("a.jpg 0\nb.jpg\nc.jpg x\nd.jpg 3\ne.jpg -1\n")
    with pytest.raises(DataError) as err:
        read_list(lists, num_classes=3, hint="how to get it")
    message = str(err.value)
    assert message.startswith("4 problems:")
    assert f"{lists}:2: expected '<path> <int label>', got 'b.jpg' (no label)" in message
    assert f"{lists}:3: label 'x' is not an integer" in message
    assert f"{lists}:4: label 3 outside [0, 3)" in message and f"{lists}:5: label -1 outside [0, 3)" in message
    assert message.endswith("how to get it")
    with pytest.raises(DataError, match=f"{tmp_path / 'nope.txt'}: list file not found"):
        read_list(tmp_path / "nope.txt", num_classes=3)


@pytest.fixture
def dtd(tmp_path):
    """A VTAB-layout root with one real task name (dtd) and images of every mode, CRLF list."""
    task = tmp_path / "dtd"
    names = {"rgb.png": "RGB", "gray.png": "L", "palette.png": "P", "cmyk.jpg": "CMYK", "rgba.png": "RGBA"}
    for name, mode in names.items():
        write_image(task / "images" / name, mode)
    write_image(task / "images" / "wide.png", size=(16, 8))
    lines = [f"images/{name} {i}" for i, name in enumerate([*names, "wide.png"])]
    (task / "train800.txt").write_bytes(("  \r\n".join(lines) + "\r\n").encode())
    return tmp_path


def test_vtab_images_of_every_mode_become_normalised_rgb_tensors(dtd):
    data = build("vtab", "dtd", "train800", dtd, backbone="vit_mini")
    assert len(data) == 6 and data.num_classes == 47 and data.targets == [0, 1, 2, 3, 4, 5]
    assert data.samples[1] == (str(dtd / "dtd" / "images" / "gray.png"), 1)
    for i in range(len(data)):
        x, y = data[i]
        assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and y == i
    pink = torch.tensor([normalised(v) for v in PINK]).view(3, 1, 1).expand(3, 32, 32)
    torch.testing.assert_close(data[0][0], pink)  # uniform RGB stays exact through the bicubic resize
    torch.testing.assert_close(data[1][0], torch.full((3, 32, 32), normalised(100)))  # L -> gray RGB
    torch.testing.assert_close(data[2][0], pink)  # P -> its palette colour
    torch.testing.assert_close(data[4][0], pink)  # RGBA -> alpha dropped
    cmyk = torch.tensor(Image.open(dtd / "dtd" / "images" / "cmyk.jpg").convert("RGB").getpixel((4, 4))) / 255
    torch.testing.assert_close(data[3][0][:, 16, 16], (cmyk - 0.5) / 0.5, atol=0.02, rtol=0)
    torch.testing.assert_close(data[5][0], pink)  # 16x8 is squashed to 32x32, not cropped


@pytest.mark.parametrize("backbone, size, mean, std", [
    ("swin_base_patch4_window7_224.ms_in22k", 224, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    ("vit_base_patch16_224.orig_in21k", 224, (0.5,) * 3, (0.5,) * 3),
    ("swin_mini", 32, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),  # a small Swin keeps ImageNet statistics
])
def test_input_size_and_normalisation_come_from_the_backbone(dtd, backbone, size, mean, std):
    x, _ = build("vtab", "dtd", "train800", dtd, backbone=backbone)[0]
    assert x.shape == (3, size, size)
    expected = torch.tensor([normalised(v, m, s) for v, m, s in zip(PINK, mean, std)])
    torch.testing.assert_close(x[:, size // 2, size // 3], expected)


def test_vtab_build_errors_name_the_fix(dtd):
    with pytest.raises(DataError, match=r"unknown VTAB task 'dtdx'; known \(VTAB-1K\): \['cifar', 'caltech101'"):
        build("vtab", "dtdx", "train800", dtd)
    with pytest.raises(DataError, match=r"unknown VTAB split 'train'; known: \['train800', 'val200'"):
        build("vtab", "dtd", "train", dtd)
    with pytest.raises(DataError, match=f"{dtd / 'dtd' / 'test.txt'}: list file not found\nTo obtain VTAB-1K: use "
                                        r"`python -m glora prepare vtab` \(docs/data.md\), the VTAB-1K export used by "
                                        r"NOAH/FacT \(vtab-1k.zip\)"):
        build("vtab", "dtd", "test", dtd)
    with pytest.raises(ValueError, match="shot/seed pick a few-shot training list; family 'vtab' has none"):
        build("vtab", "dtd", "train800", dtd, shot=1)
    with pytest.raises(ValueError, match=r"unknown data family 'vtab1k'; known: \['vtab', 'fewshot', 'imagenet'\]"):
        build("vtab1k", "dtd", "train800", dtd)
    with pytest.raises(ValueError, match="unknown backbone 'vit_tiny'"):
        build("vtab", "dtd", "train800", dtd, backbone="vit_tiny")


def test_missing_or_corrupt_images_abort_with_path_and_list_line(dtd):
    lists = dtd / "dtd" / "val200.txt"
    write_truncated_jpeg(dtd / "dtd" / "images" / "cut.jpg")
    lists.write_text("images/rgb.png 0\nimages/gone.png 1\nimages/cut.jpg 2\n")
    data = build("vtab", "dtd", "val200", dtd, backbone="vit_mini")
    assert data[0][1] == 0
    with pytest.raises(DataError, match=f"cannot read image {dtd / 'dtd' / 'images' / 'gone.png'} "
                                        f"\\(listed at {lists}:2\\): .*No such file"):
        data[1]
    with pytest.raises(DataError, match=f"cannot read image {dtd / 'dtd' / 'images' / 'cut.jpg'} "
                                        f"\\(listed at {lists}:3\\): image file is truncated"):
        data[2]


def test_suite_json_declares_the_mini_tasks(tmp_path):
    (tmp_path / "suite.json").write_text(json.dumps({"family": "vtab", "tasks": {"digits": {
        "num_classes": 3, "group": "natural",
        "sizes": {"train800": 2, "val200": 1, "train800val200": 3, "test": 500}}}}))
    write_image(tmp_path / "digits" / "0.png")
    (tmp_path / "digits" / "test.txt").write_text("0.png 2\n")
    data = build("vtab", "digits", "test", tmp_path, backbone="vit_mini")
    assert data.num_classes == 3 and data[0][1] == 2
    with pytest.raises(DataError, match=r"unknown VTAB task 'cifar'; known \(.*suite.json\): \['digits'\]"):
        build("vtab", "cifar", "test", tmp_path)
    (tmp_path / "suite.json").write_text(json.dumps({"family": "vtab", "tasks": {"digits": {
        "num_classes": 0, "group": "natural", "sizes": {}}}}))
    with pytest.raises(DataError, match="suite.json: tasks.digits.num_classes must be a positive integer, got 0"):
        build("vtab", "digits", "test", tmp_path)
    (tmp_path / "suite.json").write_text(json.dumps({"family": "fewshot", "datasets": {}}))
    with pytest.raises(DataError, match="declares family 'fewshot', but 'vtab' was asked"):
        build("vtab", "digits", "test", tmp_path)


@pytest.fixture
def pets(tmp_path):
    """A few-shot root for the paper's oxford-pets (37 classes) with a 1-shot list holding a duplicated line."""
    folder = tmp_path / "oxford-pets"
    write_image(folder / "images" / "a.png", size=(128, 32), color=(255, 0, 0))
    with Image.open(folder / "images" / "a.png") as image:  # green in the middle, red at both ends
        image.paste((0, 255, 0), (40, 0, 88, 32))
        image.save(folder / "images" / "a.png")
    write_image(folder / "images" / "b.png", "L")
    (folder / "annotations").mkdir()
    (folder / "annotations" / "train_meta.list.num_shot_1.seed_0").write_text("images/a.png 0\nimages/a.png 0\n")
    (folder / "annotations" / "test_meta.list").write_text("images/a.png 36\nimages/b.png 5\n")
    return tmp_path


def test_fewshot_eval_resizes_then_centre_crops(pets):
    data = build("fewshot", "oxford-pets", "test", pets, backbone="vit_mini")
    assert data.num_classes == 37 and data.targets == [36, 5]
    x, _ = data[0]  # 128x32 -> shorter side 36 (= 32 / 0.875) -> centre 32x32: all green, the red ends cut off
    green = torch.tensor([normalised(v) for v in (0, 255, 0)]).view(3, 1, 1).expand(3, 32, 32)
    torch.testing.assert_close(x, green, atol=0.02, rtol=0)


def test_fewshot_train_split_augments_and_needs_shot_and_seed(pets):
    torch.manual_seed(0)
    data = build("fewshot", "oxford-pets", "train", pets, backbone="vit_mini", shot=1, seed=0)
    assert len(data) == 2 and data.targets == [0, 0]  # the duplicated line is kept, as the list says
    views = [data[0][0] for _ in range(4)]
    assert all(v.shape == (3, 32, 32) for v in views) and not all(torch.equal(views[0], v) for v in views[1:])
    plain = build("fewshot", "oxford-pets", "train", pets, backbone="vit_mini", shot=1, seed=0, train=False)
    assert torch.equal(plain[0][0], plain[1][0])
    with pytest.raises(DataError, match=r"split 'train' needs shot in \[1, 2, 4, 8, 16\] and seed in \[0, 1, 2\], "
                                        "got shot=None, seed=None"):
        build("fewshot", "oxford-pets", "train", pets)
    with pytest.raises(DataError, match=r"unknown few-shot dataset 'pets'; known .*\['food101', "):
        build("fewshot", "pets", "test", pets)
    with pytest.raises(DataError, match="train_meta.list.num_shot_2.seed_1: list file not found\nTo obtain the "
                                        "few-shot data: use `python -m glora prepare fewshot` \\(docs/data.md\\) "
                                        "or the few-shot splits of NOAH / CoOp"):
        build("fewshot", "oxford-pets", "train", pets, shot=2, seed=1)


def test_fewshot_recipe_gives_timm_mixup_settings():
    recipe = FewShotRecipe()
    assert (recipe.mixup, recipe.cutmix, recipe.label_smoothing) == (0.8, 1.0, 0.1)
    mixup = Mixup(**recipe.mixup_kwargs(num_classes=5))
    assert (mixup.mixup_alpha, mixup.cutmix_alpha, mixup.label_smoothing, mixup.num_classes) == (0.8, 1.0, 0.1, 5)
    x, y = mixup(torch.zeros(4, 3, 8, 8), torch.tensor([0, 1, 2, 3]))
    assert y.shape == (4, 5)


def variant(root, name, folders, per_folder=1):
    for folder in folders:
        for i in range(per_folder):
            write_image(root / name / folder / f"{i}.jpeg", size=(4, 4))


@pytest.mark.parametrize("name", ["imagenet_a", "imagenet_r"])
def test_imagenet_a_and_r_map_wnids_to_1000_class_indices(tmp_path, name):
    wnids = timm_synsets(f"{name}_synsets.txt")
    variant(tmp_path, name, wnids)
    data = build("imagenet", name, "test", tmp_path, backbone="vit_mini")
    assert len(data) == 200 and data.num_classes == 1000 and data.classes == imagenet_synsets()
    indices = [int(i) for i in timm_synsets(f"{name}_indices.txt")]
    assert sorted(set(data.targets)) == indices
    by_folder = {path.split("/")[-2]: label for path, label in data.samples}
    assert by_folder["n12267677"] == 988 and data.classes[988] == "n12267677"
    assert by_folder["n01443537" if name == "imagenet_r" else "n01498041"] == (1 if name == "imagenet_r" else 6)
    x, y = data[0]
    assert x.shape == (3, 32, 32) and y == indices[0]


def test_imagenet_variants_complain_about_missing_or_unknown_folders(tmp_path):
    variant(tmp_path, "imagenet_v2", ["0", "999", "1000", "007"])
    with pytest.raises(DataError) as err:
        build("imagenet", "imagenet_v2", "test", tmp_path)
    message = str(err.value)
    assert f"{tmp_path / 'imagenet_v2' / '1000'}: folder name is not a class index in [0, 1000)" in message
    assert f"{tmp_path / 'imagenet_v2' / '007'}: folder name is not a class index" in message
    assert f"{tmp_path / 'imagenet_v2'}: 998 class folders missing, e.g. ['1', '10', '100'," in message
    assert message.endswith(".") and "imagenet_v2: ImageNet-V2 matched-frequency" in message
    with pytest.raises(DataError, match="only has split 'test', got 'val'"):
        build("imagenet", "imagenet_v2", "val", tmp_path)
    with pytest.raises(DataError, match=r"unknown ImageNet variant 'imagenet_c'; known: \['imagenet_v2', "):
        build("imagenet", "imagenet_c", "test", tmp_path)


def test_variant_synsets_txt_replaces_timms_list(tmp_path):
    variant(tmp_path, "imagenet_sketch", ["n02", "n01"], per_folder=2)
    (tmp_path / "imagenet_sketch" / "synsets.txt").write_text("n01\nn02\nn03\n")
    variant(tmp_path, "imagenet_v2", ["2"])
    (tmp_path / "imagenet_v2" / "synsets.txt").write_text("n01\nn02\nn03\n")
    sketch = build("imagenet", "imagenet_sketch", "test", tmp_path, backbone="vit_mini")
    assert sketch.num_classes == 3 and sketch.classes == ["n01", "n02", "n03"] and sketch.targets == [0, 0, 1, 1]
    v2 = build("imagenet", "imagenet_v2", "test", tmp_path, backbone="vit_mini")
    assert v2.num_classes == 3 and v2.targets == [2]


def test_few_shot_augmentation_never_fails_on_posterize():
    """timm's PosterizeIncreasing reaches 0 bits at magnitude 10, which Pillow rejects; the recipe caps it."""
    import numpy as np
    from PIL import Image

    from glora.data.transforms import train_transform
    from glora.models import get_backbone

    transform = train_transform(get_backbone("vit_mini"))
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8))
    random.seed(0)
    for _ in range(3000):
        assert transform(image).shape == (3, 32, 32)
