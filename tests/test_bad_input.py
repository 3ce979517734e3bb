"""Bad input and faults, as a user meets them: each case asserts the exit code, that the one ``error: ...`` line
names the offending file (and line), key or option, that no traceback is shown, and that no earlier output (the
data, the checkpoint, the results of earlier runs in the folder the command writes to) was changed or lost.

The table of cases and their messages is docs/troubleshooting.md's "Messages"."""

from __future__ import annotations

import errno
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from engine_fixtures import ROOT, make_world
from PIL import Image

from glora.cli import main

TRAIN = ["train", "--method", "glora", "--size", "tiny", "--task", "toy"]
EXPORT = ["export", "--method", "glora", "--size", "tiny", "--task", "toy"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The engine fixture world plus earlier outputs: a GLoRA run trained, searched, exported and evaluated."""
    world = make_world(tmp_path_factory.mktemp("world"))
    runs = world["root"] / "runs"
    world["runs"] = runs
    threads = torch.get_num_threads()  # the stages below run with --threads 1: restore the process's setting
    for argv in ([*TRAIN, "--out", str(runs / "train")],
                 ["search", "--size", "tiny", "--task", "toy", "--weights", str(runs / "train/weights.safetensors"),
                  "--out", str(runs / "search")],
                 [*EXPORT, "--weights", str(runs / "train/weights.safetensors"), "--choices",
                  str(runs / "search/best.json"), "--out", str(runs / "export")],
                 ["evaluate", "--model", str(runs / "export/model.safetensors"), "--out", str(runs / "eval.json")]):
        assert cli(world, argv) == 0
    torch.set_num_threads(threads)
    return world


@pytest.fixture(autouse=True)
def torch_threads():
    """The cases run with --threads 1 (fast on a busy machine); the process's setting is restored afterwards."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def cli(world, argv, *overlays, options=("--quiet", "--device", "cpu", "--threads", "1")) -> int:
    configs = [a for path in [*world["config"], *overlays] for a in ("--config", str(path))]
    return main([argv[0], *configs, *options, *argv[1:]])


def overlay(tmp_path: Path, data: dict, name: str = "case") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def untouched(world):
    """After the case: every earlier file of the world (data, checkpoint, runs) is there with the same bytes, and
    no temporary file is left behind."""
    before = digests(world["root"])
    yield
    after = digests(world["root"])
    changed = sorted(k for k in before if after.get(k) != before[k])
    assert not changed, f"earlier outputs changed or lost: {changed}"
    assert not [k for k in after if ".tmp" in k], "a temporary file was left behind"


def one_error(capsys, *needles: str) -> str:
    """The message of the one ``error:`` of stderr (it may span the lines of a multi-problem data error); each of
    ``needles`` is in it and no traceback is shown."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = err.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("error: ")]
    assert len(starts) == 1, err
    message = "\n".join(lines[starts[0]:])
    for needle in needles:
        assert needle in message, f"{needle!r} not in: {message}"
    return message


def vtab_copy(world, tmp_path) -> tuple[Path, Path]:
    """A copy of the world's VTAB root to break, and the overlay that points the stages at it."""
    root = tmp_path / "vtab"
    shutil.copytree(world["root"] / "vtab", root)
    return root, overlay(tmp_path, {"paths": {"vtab": str(root)}}, "data")


def prepend(list_file: Path, line: str) -> None:
    list_file.write_text(f"{line}\n{list_file.read_text()}")


# ---------------------------------------------------------------------------------------------------------------
# list files and images reaching the loaders (train) and `data check`

def test_train_refuses_a_list_path_leading_out_of_the_data_root(world, tmp_path, capsys, untouched):
    root, data = vtab_copy(world, tmp_path)
    (tmp_path / "outside.png").write_bytes((root / "toy/images/train800_000.png").read_bytes())
    prepend(root / "toy/train800.txt", "../../outside.png 0")
    assert cli(world, [*TRAIN, "--out", str(world["runs"] / "train")], data) == 2
    one_error(capsys, f"{root / 'toy/train800.txt'}:1: '../../outside.png' resolves to {tmp_path / 'outside.png'}",
              f"outside the data root {root}")


def test_train_never_opens_an_absolute_list_path(world, tmp_path, capsys, monkeypatch, untouched):
    root, data = vtab_copy(world, tmp_path)
    prepend(root / "toy/train800.txt", "/etc/passwd 0")
    opened = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda path, *a, **k: opened.append(str(path)) or real_open(path, *a, **k))
    assert cli(world, [*TRAIN, "--out", str(world["runs"] / "train")], data) == 2
    one_error(capsys, f"{root / 'toy/train800.txt'}:1: '/etc/passwd'", "outside the data root")
    assert "/etc/passwd" not in opened


def test_train_refuses_a_symlink_out_of_the_data_root(world, tmp_path, capsys, untouched):
    root, data = vtab_copy(world, tmp_path)
    (tmp_path / "elsewhere.png").write_bytes((root / "toy/images/train800_000.png").read_bytes())
    (root / "toy/images/train800_000.png").unlink()
    (root / "toy/images/train800_000.png").symlink_to(tmp_path / "elsewhere.png")
    assert cli(world, [*TRAIN, "--out", str(world["runs"] / "train")], data) == 2
    one_error(capsys, f"{root / 'toy/train800.txt'}:1: 'images/train800_000.png' resolves to "
                      f"{tmp_path / 'elsewhere.png'}")


def test_a_symlinked_task_folder_is_inside_the_root(world, tmp_path, untouched):
    """Linking a whole task (or variant) folder into the data root is the documented layout: not an escape."""
    root, data = vtab_copy(world, tmp_path)
    shutil.move(root / "toy", tmp_path / "toy_elsewhere")
    (root / "toy").symlink_to(tmp_path / "toy_elsewhere")
    assert main(["data", "check", "--family", "vtab", "--root", str(root), "--no-decode",
                 "--manifest", str(tmp_path / "manifest.json")]) == 0
    assert cli(world, [*TRAIN, "--set", "train.epochs=1", "--out", str(tmp_path / "run")], data) == 0


def test_data_check_names_each_escaping_line(world, tmp_path, capsys, untouched):
    root, _ = vtab_copy(world, tmp_path)
    prepend(root / "toy/test.txt", "../../../../x.png 0")
    prepend(root / "toy/val200.txt", "/etc/hostname 1")
    assert main(["data", "check", "--family", "vtab", "--root", str(root)]) == 2
    one_error(capsys, f"{root / 'toy/test.txt'}:1: '../../../../x.png'", f"{root / 'toy/val200.txt'}:1: "
              "'/etc/hostname'", "outside the data root")


def test_data_check_refuses_an_imagenet_variant_image_linked_from_elsewhere(tmp_path, capsys):
    folder = tmp_path / "variants" / "imagenet_r"
    (folder / "n01").mkdir(parents=True)
    (folder / "synsets.txt").write_text("n01\n")
    Image.new("RGB", (8, 8)).save(folder / "n01" / "a.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "secret.png")
    (folder / "n01" / "b.png").symlink_to(tmp_path / "secret.png")
    assert main(["data", "check", "--family", "imagenet", "--root", str(tmp_path / "variants"),
                 "--task", "imagenet_r"]) == 2
    one_error(capsys, f"{folder / 'n01' / 'b.png'}: a symlink to {tmp_path / 'secret.png'}, outside the data root")


def test_an_empty_list_reaching_train_is_named(world, tmp_path, capsys, untouched):
    root, data = vtab_copy(world, tmp_path)
    (root / "toy/train800.txt").write_text("\n\n")
    assert cli(world, [*TRAIN, "--out", str(world["runs"] / "train")], data) == 2
    one_error(capsys, f"{root / 'toy/train800.txt'}: the list has no entries")


def test_data_check_names_an_empty_list_without_an_expected_size(tmp_path, capsys):
    folder = tmp_path / "fewshot" / "toyshot"
    (folder / "annotations").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(folder / "a.png")
    (tmp_path / "fewshot" / "suite.json").write_text(json.dumps({"family": "fewshot", "datasets": {"toyshot": {
        "num_classes": 1, "shots": [1], "seeds": [0]}}}))
    (folder / "annotations" / "train_meta.list.num_shot_1.seed_0").write_text("a.png 0\n")
    (folder / "annotations" / "test_meta.list").write_text("a.png 0\n")
    (folder / "annotations" / "val_meta.list").write_text("")
    assert main(["data", "check", "--family", "fewshot", "--root", str(tmp_path / "fewshot")]) == 2
    one_error(capsys, f"{folder / 'annotations/val_meta.list'}: the list has no entries")


def test_train_refuses_an_image_it_cannot_decode(world, tmp_path, capsys, untouched):
    root, data = vtab_copy(world, tmp_path)
    Image.fromarray(np.full((32, 32), 300.0, dtype=np.float32), "F").save(root / "toy/images/float.tiff")
    prepend(root / "toy/train800.txt", "images/float.tiff 0")
    assert cli(world, [*TRAIN, "--out", str(world["runs"] / "train")], data) == 2
    one_error(capsys, f"cannot read image {root / 'toy/images/float.tiff'} (listed at {root / 'toy/train800.txt'}:1)",
              "only [0, 1] is decoded")


def test_data_check_names_a_truncated_image(world, tmp_path, capsys, untouched):
    root, _ = vtab_copy(world, tmp_path)
    image = root / "toy/images/test_003.png"
    image.write_bytes(image.read_bytes()[:200])
    assert main(["data", "check", "--family", "vtab", "--root", str(root)]) == 2
    one_error(capsys, f"{root / 'toy/test.txt'}:4: cannot decode {image}")


@pytest.mark.parametrize("line, message", [
    ("images/train800_000.png x", ":1: label 'x' is not an integer"),
    ("images/train800_000.png 9", ":1: label 9 outside [0, 4)"),
    ("images/nope.png 0", None),
])
def test_train_names_a_bad_list_line(world, tmp_path, capsys, untouched, line, message):
    root, data = vtab_copy(world, tmp_path)
    prepend(root / "toy/train800.txt", line)
    assert cli(world, [*TRAIN, "--out", str(world["runs"] / "train")], data) == 2
    if message:
        one_error(capsys, f"{root / 'toy/train800.txt'}{message}")
    else:  # a missing image: the loader names it with its list line
        one_error(capsys, f"cannot read image {root / 'toy/images/nope.png'} (listed at "
                          f"{root / 'toy/train800.txt'}:1)")


# ---------------------------------------------------------------------------------------------------------------
# configuration, --set and command-line options

@pytest.mark.parametrize("methods, line, needles", [
    ({"glora": {"target_modulez": "qkv"}}, 3,
     ["methods.glora has unknown key(s) ['target_modulez']; glora takes ['target_modules']"]),
    ({"glora": {"ranks": [8]}}, 3,
     ["methods.glora has unknown key(s) ['ranks']", "GLoRA's ranks come from glora.sizes"]),
    ({"lora": {"per_task": {"toy": {"rnak": 4}}}}, 5,
     ["methods.lora.per_task.toy has unknown key(s) ['rnak']; lora takes ['rank', 'alpha'"]),
    ({"lorra": {"rank": 4}}, 2, ["methods.lorra: unknown method; registered: ["]),
])
def test_a_misspelt_method_option_fails_at_configuration_time(world, tmp_path, capsys, untouched, methods, line,
                                                              needles):
    """Every method's options (GLoRA's too) are checked when the configuration is loaded: the command stops before
    any data is read or model built, naming the file and line, the method, the key and the valid keys."""
    case = overlay(tmp_path, {"methods": methods})
    assert cli(world, [*TRAIN, "--out", str(world["runs"] / "train")], case) == 2
    one_error(capsys, f"error: {case}:{line}: ", *needles)


def test_a_method_option_value_the_method_refuses_is_named(world, tmp_path, capsys, untouched):
    bad = overlay(tmp_path, {"methods": {"lora": {"rank": 0}}})
    assert cli(world, ["train", "--method", "lora", "--task", "toy", "--out", str(world["runs"] / "train")], bad) == 2
    one_error(capsys, "LoRA rank must be >= 1", "fix methods.lora")


def test_snakemake_dry_run_fails_on_a_misspelt_method_option(tmp_path):
    for item in ("Snakefile", "config.yaml", "config", "workflow", "envs"):
        src = ROOT / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / item)
    typo = overlay(tmp_path, {"methods": {"glora": {"target_modulez": "qkv"}}}, "typo")
    run = subprocess.run([str(Path(sys.executable).with_name("snakemake")), "--directory", str(tmp_path), "-n",
                          "--cores", "1", "--configfile", str(typo)], capture_output=True, text=True, check=False)
    assert run.returncode != 0
    assert f"{typo}:3: methods.glora has unknown key(s) ['target_modulez']; glora takes ['target_modules']" in \
        run.stdout + run.stderr


@pytest.mark.parametrize("setting, needles", [
    ("train.epochs=[1,", ["--set train.epochs=[1,: the value of train.epochs is not valid YAML"]),
    ("train.epochs", ["--set expects KEY=VALUE", "'train.epochs'"]),
    ("train.epochs=many", ["--set train.epochs=many: train.epochs: 'many' is not of type 'integer'"]),
    ("train.epoch=3", ["--set train.epoch=3: train: Additional properties are not allowed ('epoch' was unexpected)"]),
])
def test_a_bad_set_override_is_named(world, capsys, untouched, setting, needles):
    assert cli(world, [*TRAIN, "--set", setting, "--out", str(world["runs"] / "train")]) == 2
    one_error(capsys, *needles)


def test_a_configuration_file_that_is_not_yaml_is_named_with_its_line(world, tmp_path, capsys, untouched):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  epochs: 3\n  lr: [1e-3\n")
    assert cli(world, [*TRAIN, "--out", str(world["runs"] / "train")], bad) == 2
    one_error(capsys, f"configuration file {bad}:", "not valid YAML")


def test_a_missing_configuration_file_is_named(world, tmp_path, capsys, untouched):
    assert cli(world, [*TRAIN, "--out", str(world["runs"] / "train")], tmp_path / "nope.yaml") == 2
    one_error(capsys, f"configuration file {tmp_path / 'nope.yaml'} does not exist")


@pytest.mark.parametrize("threads", ["-1", "0", "two"])
def test_threads_must_be_a_positive_integer(world, capsys, untouched, threads):
    with pytest.raises(SystemExit) as exit_:
        cli(world, [*TRAIN, "--threads", threads, "--out", str(world["runs"] / "train")])
    assert exit_.value.code == 2
    one_error(capsys, "error: python -m glora train: argument --threads: expected an integer >= 1")


def test_a_device_that_is_not_there_is_named(world, capsys, untouched):
    assert cli(world, [*TRAIN, "--out", str(world["runs"] / "train")], options=("--device", "cuda:99")) == 2
    one_error(capsys, "--device cuda:99")


# ---------------------------------------------------------------------------------------------------------------
# weights, exported models, cards and choices

@pytest.fixture
def export_copy(world, tmp_path):
    folder = tmp_path / "export"
    shutil.copytree(world["runs"] / "export", folder)
    return folder


def evaluate(world, model: Path) -> int:
    return cli(world, ["evaluate", "--model", str(model), "--out", str(world["runs"] / "eval.json")])


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_evaluate_names_a_damaged_model_file(world, export_copy, capsys, untouched, damage):
    model = export_copy / "model.safetensors"
    data = model.read_bytes()
    model.write_bytes({"truncated": data[: len(data) // 2], "garbage": bytes(range(256)) * 8, "empty": b""}[damage])
    assert evaluate(world, model) == 2
    one_error(capsys, f"{model} cannot be loaded as an exported vit_mini model", "re-run `python -m glora export`")


@pytest.mark.parametrize("card, needles", [
    ('{"backbone": "vit_mini", ', ["is not valid JSON", "re-run `python -m glora export` for this run"]),
    ('["not", "a", "card"]', ["must hold a JSON object, got list"]),
    ('{"backbone": "vit_mini"}', ["lacks or mistypes num_classes (int), run (dict), merged (bool)"]),
])
def test_evaluate_names_a_corrupt_card(world, export_copy, capsys, untouched, card, needles):
    (export_copy / "card.json").write_text(card)
    assert evaluate(world, export_copy / "model.safetensors") == 2
    one_error(capsys, f"card {export_copy / 'card.json'}", *needles)


def test_evaluate_names_a_missing_model(world, tmp_path, capsys, untouched):
    assert evaluate(world, tmp_path / "nope" / "model.safetensors") == 2
    one_error(capsys, f"{tmp_path / 'nope' / 'model.safetensors'} or its card", "run `python -m glora export` first")


def test_export_names_truncated_weights(world, tmp_path, capsys, untouched):
    weights = tmp_path / "weights.safetensors"
    weights.write_bytes((world["runs"] / "train/weights.safetensors").read_bytes()[:1000])
    assert cli(world, [*EXPORT, "--weights", str(weights), "--choices", str(world["runs"] / "search/best.json"),
                       "--out", str(world["runs"] / "export")]) == 2
    one_error(capsys, f"{weights} is not a readable safetensors file")


@pytest.mark.parametrize("content, needles", [
    ("{not json", ["is not valid JSON"]),
    ('[1, 2]', ["holds no {layer: choice} mapping"]),
    (None, ["does not fit this glora supernet", "unknown option 'lora99'"]),
])
def test_export_names_a_bad_choices_file(world, tmp_path, capsys, untouched, content, needles):
    choices = tmp_path / "best.json"
    if content is None:  # a real best.json with one option the supernet does not have
        best = json.loads((world["runs"] / "search/best.json").read_text())
        first = next(iter(best["choices"]))
        best["choices"][first]["A"] = "lora99"
        content = json.dumps(best)
    choices.write_text(content)
    assert cli(world, [*EXPORT, "--weights", str(world["runs"] / "train/weights.safetensors"), "--choices",
                       str(choices), "--out", str(world["runs"] / "export")]) == 2
    one_error(capsys, f"choices file {choices}", *needles)


def test_search_names_missing_supernet_weights(world, tmp_path, capsys, untouched):
    assert cli(world, ["search", "--size", "tiny", "--task", "toy", "--weights", str(tmp_path / "w.safetensors"),
                       "--out", str(world["runs"] / "search")]) == 2
    one_error(capsys, f"supernet weights {tmp_path / 'w.safetensors'} do not exist", "python -m glora train")


# ---------------------------------------------------------------------------------------------------------------
# no space left on device: the file is named, the previous one is intact

def enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_while_writing_resume_pt_keeps_the_previous_one(world, tmp_path, capsys, monkeypatch):
    """The second resume checkpoint does not fit: the error names resume.pt, the first one stays loadable, and a
    rerun (with space again) resumes from it."""
    out = tmp_path / "run"
    calls = {"n": 0}
    real = Path.write_bytes

    def second_fails(self, data):
        if self.name.startswith(".resume.pt.tmp"):
            calls["n"] += 1
            if calls["n"] == 2:
                real(self, bytes(data)[: len(data) // 3])  # part of it is written, then the disk is full
                enospc()
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", second_fails)
    assert cli(world, [*TRAIN, "--out", str(out)]) == 2
    one_error(capsys, f"no space left on the device of {out / 'resume.pt'} while writing it",
              "the previous resume.pt is unchanged")
    assert torch.load(out / "resume.pt", weights_only=True)["epoch"] == 1
    assert sorted(p.name for p in out.iterdir()) == ["resume.pt"]  # no temporary file, no output
    monkeypatch.undo()
    assert cli(world, [*TRAIN, "--out", str(out), "--log", str(tmp_path / "log")]) == 0
    assert "resuming" in (tmp_path / "log").read_text()
    assert (out / "weights.safetensors").read_bytes() == (world["runs"] / "train/weights.safetensors").read_bytes()


def test_disk_full_while_writing_weights_keeps_the_earlier_run(world, capsys, monkeypatch, untouched):
    """A rerun into a finished run's folder cannot write its weights: they are named, the earlier ones stay."""
    import safetensors.torch

    real = safetensors.torch.save_file

    def full(tensors, filename, metadata=None):  # what safetensors' writer raises on ENOSPC (os error 28)
        real(tensors, filename, metadata)
        Path(filename).write_bytes(Path(filename).read_bytes()[:100])
        raise safetensors.SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    assert cli(world, [*TRAIN, "--out", str(world["runs"] / "train")]) == 2
    one_error(capsys, f"no space left on the device of {world['runs'] / 'train/weights.safetensors'} while writing it",
              "the previous weights.safetensors is unchanged")
    (world["runs"] / "train/resume.pt").unlink()  # the rerun's state (epoch 2), beside the unchanged outputs


def test_disk_full_while_writing_a_card_keeps_the_earlier_one(world, capsys, monkeypatch, untouched):
    real = Path.write_text
    monkeypatch.setattr(Path, "write_text", lambda self, *a, **k: enospc() if self.name.startswith(".card.json")
                        else real(self, *a, **k))
    assert cli(world, [*EXPORT, "--weights", str(world["runs"] / "train/weights.safetensors"), "--choices",
                       str(world["runs"] / "search/best.json"), "--out", str(world["runs"] / "export")]) == 2
    one_error(capsys, f"no space left on the device of {world['runs'] / 'export/card.json'}",
              "the previous card.json is unchanged")


# ---------------------------------------------------------------------------------------------------------------
# compare --strict: cells of enabled experiments that were never produced

def ci_tables(tmp_path: Path, leave_out: str) -> Path:
    tables = tmp_path / "tables"
    tables.mkdir()
    for path in (ROOT / "config/golden/ci").glob("*.csv"):
        if path.stem != leave_out:
            shutil.copy(path, tables)
    llm = tables / "table2_llm.csv"  # our rows of Table 2 say so (the paper's are beside them)
    llm.write_text(llm.read_text().replace("\n", ",ours\n").replace("average,ours", "average,source", 1))
    return tables


def compare(tmp_path, tables, *sets):
    args = ["compare", "--config", str(ROOT / "config.yaml"), "--config", str(ROOT / "config/mini.yaml"),
            "--config", str(ROOT / "config/ci.yaml"), "--set", f"compare.golden={ROOT / 'config/golden/ci'}",
            "--tables", str(tables), "--out", str(tmp_path / "compare"), "--strict", "--quiet"]
    return main([*args, *(a for s in sets for a in ("--set", s))])


def test_compare_strict_fails_listing_the_missing_cells_of_an_enabled_experiment(tmp_path, capsys):
    """The defect of issue 17: Table 3 was never produced, yet --strict passed."""
    tables = ci_tables(tmp_path, "table3_domain_generalization")
    assert compare(tmp_path, tables) == 1
    one_error(capsys, "compare --strict: 6 cell(s) of enabled experiments missing",
              "table3_domain_generalization: GLoRA-small / imagenet", "run the workflow to the end")
    summary = (tmp_path / "compare/summary.md").read_text()
    assert "- table3_domain_generalization: GLoRA-small / imagenet_r" in summary


def test_compare_strict_passes_when_the_missing_table_belongs_to_a_disabled_experiment(tmp_path, capsys):
    tables = ci_tables(tmp_path, "table3_domain_generalization")
    assert compare(tmp_path, tables, "experiments.domain_generalization.enabled=false") == 0
    assert '"missing": 0, "not run": 6' in capsys.readouterr().out
