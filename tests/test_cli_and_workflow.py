"""The command line, the demo job and the Snakefile as users run them."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_model

from glora.cli import main
from glora.demo import run_demo, synthetic_squares
from glora.models import create_backbone
from tests.http_server import FileServer
from tests.prepare_fixtures import build_mirror, small_tables, sources_for, write_yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def test_help_lists_every_stage():
    out = subprocess.run([sys.executable, "-m", "glora", "--help"], capture_output=True, text=True, check=True)
    for stage in ("demo", "space", "data", "pretrain", "train", "search", "export", "evaluate"):
        assert stage in out.stdout
    for stage in ("pretrain", "train", "search", "export", "evaluate"):
        usage = subprocess.run([sys.executable, "-m", "glora", stage, "--help"], capture_output=True, text=True)
        assert usage.returncode == 0 and "--config" in usage.stdout and "--out" in usage.stdout


def test_space_reports_the_exact_subnet_count(capsys):
    assert main(["space", "--backbone", "vit_base_patch16_224.orig_in21k", "--ranks", "8"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["layers"] == 48 and int(report["subnets"]) == 432**48


@pytest.mark.parametrize("argv, message", [
    (["space", "--ranks", "0"], "ranks must be positive"),
    (["space", "--backbone", "resnet50"], "unknown backbone 'resnet50'; known: ["),
])
def test_cli_errors_are_one_clear_line(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err


def test_demo_writes_verified_outputs(tmp_path):
    summary = run_demo(tmp_path, epochs=2, candidates=4, budget_m=1.0, seed=1, quiet=True)
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk == summary
    assert summary["candidates_within_budget"] == 4 and summary["adapted_layers"] == 16
    assert summary["max_abs_diff_merged_vs_supernet"] <= 1e-5
    assert len(json.loads((tmp_path / "choices.json").read_text())) == 16
    assert (tmp_path / "candidates.csv").read_text().splitlines()[0] == "candidate,params,val_acc"
    plain = create_backbone("vit_mini", num_classes=4).eval()  # the export loads into a plain timm model
    load_model(plain, str(tmp_path / "merged.safetensors"))
    x, y = synthetic_squares(128, 4, torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert plain(x).shape == (128, 4)


def test_demo_budget_too_small_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no sampled subnet fits budget_m=1e-06"):
        run_demo(tmp_path, epochs=1, candidates=2, budget_m=1e-6, quiet=True)


def snakemake(workdir, *args):
    return subprocess.run([SNAKEMAKE, "--directory", str(workdir), "--snakefile", str(workdir / "Snakefile"), *args],
                          capture_output=True, text=True)


@pytest.fixture
def workflow_copy(tmp_path):
    for item in ("Snakefile", "config.yaml", "config", "workflow", "envs", "assets"):
        src = ROOT / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / item)
    return tmp_path


def job_counts(stdout: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run as {rule: count}."""
    lines = stdout[stdout.index("Job stats:"):].splitlines()[3:]
    counts = {}
    for line in lines:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        counts[parts[0]] = int(parts[1])
    return counts


def test_paper_dry_run_plans_every_experiment_without_any_data(workflow_copy):
    run = snakemake(workflow_copy, "--dry-run", "-p", "--cores", "all", "--resources", "gpu=4")
    assert run.returncode == 0, run.stderr + run.stdout
    # preparation first: 3 data families and 2 checkpoints, each then checked;
    # 19 VTAB tasks x (13 methods + 3 GLoRA sizes) + Swin-B 19 + few-shot 5 x 5 shots x 3 seeds + 1 DG source;
    # searched: GLoRA everywhere and NOAH (whose subnets are retrained); Table 4, the tables, their comparison once
    assert job_counts(run.stdout) == {"prepare_data": 3, "prepare_checkpoint": 2, "check_checkpoint": 2,
                                      "check_data": 3, "train": 399, "export": 399, "search": 171, "retrain": 19,
                                      "evaluate": 399, "efficiency": 1, "tables": 1, "figures": 1, "compare": 1,
                                      "all": 1, "total": 1402}
    for target in ("vtab", "fewshot", "imagenet"):
        assert (f"python -m glora prepare {target} --config results/paper/config.resolved.yaml --quiet "
                f"--out results/paper/data/prepared/{target}.json") in run.stdout
    assert ("python -m glora prepare checkpoint --backbone swin_base_patch4_window7_224.ms_in22k" in run.stdout)
    assert "results/paper/dg/evaluate/glora_0.29M/imagenet/shot16_seed0.json" in run.stdout
    assert not (workflow_copy / "results").exists()  # a dry run writes nothing


def lay_out_by_hand(root, skip=()):
    """The paper's folders as a user lays them out today (list files, variant folders, checkpoint files)."""
    from glora.data.fewshot import FEWSHOT_SETS, list_name
    from glora.data.vtab import SPLITS, VTAB_TASKS

    files = [f"data/vtab-1k/{t}/{s}.txt" for t in VTAB_TASKS for s in SPLITS]
    for name, record in FEWSHOT_SETS.items():
        splits = [list_name("train", k, s) for k in record.shots for s in record.seeds] + [
            list_name("val"), list_name("test")]
        files += [f"data/few-shot/{name}/{split}" for split in splits]
    files += [f"data/imagenet/{v}/{c}/a.jpg" for v, c in (("imagenet_v2", "0"), ("imagenet_sketch", "n01440764"),
                                                          ("imagenet_a", "n01498041"), ("imagenet_r", "n01443537"))]
    files += ["checkpoints/ViT-B_16.npz", "checkpoints/swin_base_patch4_window7_224_22k.pth"]
    for rel in files:
        if not rel.startswith(tuple(skip)):
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text("")


def test_paper_dry_run_plans_no_download_for_data_laid_out_by_hand(workflow_copy):
    """Few-shot lists, ImageNet variants and the ViT checkpoint laid out by hand: no prepare job for them (they
    are checked); one VTAB-1K list file and the Swin checkpoint missing: those two are prepared."""
    lay_out_by_hand(workflow_copy, skip=("data/vtab-1k/kitti/test.txt", "checkpoints/swin"))
    run = snakemake(workflow_copy, "--dry-run", "-p", "--cores", "all", "--resources", "gpu=4")
    assert run.returncode == 0, run.stderr + run.stdout
    counts = job_counts(run.stdout)
    assert (counts["prepare_data"], counts["prepare_checkpoint"]) == (1, 1)
    assert (counts["check_data"], counts["check_checkpoint"], counts["total"]) == (3, 2, 1399)
    prepared = sorted(re.findall(r"python -m glora prepare (\S+)(?: --backbone (\S+))?", run.stdout))
    assert prepared == [("checkpoint", "swin_base_patch4_window7_224.ms_in22k"), ("vtab", "")]


def test_mini_dry_run_and_switching_experiments_off(workflow_copy):
    run = snakemake(workflow_copy, "--dry-run", "--printshellcmds", "--cores", "16", "--configfile", "config/mini.yaml")
    assert run.returncode == 0, run.stderr + run.stdout
    counts = job_counts(run.stdout)
    assert " --threads 16 " not in run.stdout  # torch threads come from the config (golden tables on any machine)
    # the committed backbone (assets/vit_mini): no upstream set, no pre-training
    assert counts["mini_data"] == 1 and "pretrain" not in counts and "mini_upstream" not in counts
    # 10 tasks x 14 variants (Table 1's methods), GLoRA once more per task (its 2 supernet rates, chosen on val200),
    # + few-shot 2 datasets x 3 shots + 1 DG source
    assert counts["train"] == 10 * 15 + 2 * 3 + 1 and counts["select_lr"] == 10 and counts["standalone"] == 10
    assert counts["search"] == 10 * 3 + 2 * 3 + 1 and counts["retrain"] == 10 and counts["efficiency"] == 1
    # Table 2 in miniature: the generated tiny LLaMA, LoRA + 2 GLoRA runs (searched), 3 exports, + the base row
    assert (counts["llm_mini"], counts["llm_train"], counts["llm_search"], counts["llm_export"],
            counts["llm_evaluate"]) == (1, 3, 2, 3, 4)
    off = workflow_copy / "off.yaml"
    off.write_text("experiments: {fewshot: {enabled: false}, domain_generalization: {enabled: false}}\n")
    run = snakemake(workflow_copy, "--dry-run", "--cores", "all", "--configfile", "config/mini.yaml", str(off))
    assert job_counts(run.stdout)["train"] == 150


def test_quick_run_is_a_subset_of_the_mini_suite_with_every_rule(workflow_copy):
    """`make run`'s plan: every rule the mini suite has, on the subset of config/quick.yaml, and each shared job
    with the very command line the mini suite gives it (so its cells are the mini suite's)."""
    quick = snakemake(workflow_copy, "--dry-run", "--printshellcmds", "--cores", "2", "--configfile",
                      "config/mini.yaml", "config/quick.yaml")
    mini = snakemake(workflow_copy, "--dry-run", "--printshellcmds", "--cores", "2", "--configfile", "config/mini.yaml")
    assert quick.returncode == 0 and mini.returncode == 0, quick.stderr + mini.stderr
    counts = job_counts(quick.stdout)
    assert set(counts) == set(job_counts(mini.stdout))  # every rule of the mini suite runs
    # 3 tasks x (Linear, Full, LoRA, NOAH, GLoRA at 2 rates) + few-shot 2 shots + the DG source
    assert counts["train"] == 3 * 6 + 2 + 1 and counts["select_lr"] == 3 and counts["retrain"] == 3
    assert counts["total"] == 90
    stage_lines = {line.strip() for line in mini.stdout.splitlines() if "python -m glora" in line}
    shared = [line.strip() for line in quick.stdout.splitlines()
              if re.search(r"python -m glora (train|search|select|standalone|export|evaluate) ", line)]
    assert len(shared) == 21 + 12 + 3 + 3 + 18 + 18 + 3 and all(line in stage_lines for line in shared)


@pytest.mark.parametrize("addition, message", [
    ("\nepochs_typo: 3\n", "epochs_typo"),
    ("\ntrain: {epochs: many}\n", "'many' is not of type 'integer'"),
    ("\nexperiments: {vtab: {methods: [lora99]}}\n", "unknown method 'lora99'"),
])
def test_snakemake_rejects_bad_config_with_the_key_named(workflow_copy, addition, message):
    config = workflow_copy / "config.yaml"
    config.write_text(config.read_text() + addition)
    run = snakemake(workflow_copy, "--dry-run", "--cores", "1")
    assert run.returncode != 0
    assert message in run.stderr + run.stdout


def test_a_real_paper_run_without_data_stops_at_preparation_and_the_check(workflow_copy):
    """Offline (every request goes to a closed local port), VTAB-1K laid out by hand but empty: the prepare jobs
    fail naming each mirror and what to do, the VTAB check names the bad list files, no training starts."""
    lay_out_by_hand(workflow_copy, skip=("data/few-shot", "data/imagenet", "checkpoints"))
    sources = yaml.safe_load((workflow_copy / "config" / "sources.yaml").read_text())
    sources["settings"]["retries"] = 0
    (workflow_copy / "offline.yaml").write_text(yaml.safe_dump(sources))
    (workflow_copy / "overlay.yaml").write_text("paths: {sources: offline.yaml}\n")
    env = {k: v for k, v in os.environ.items() if k.lower() != "no_proxy"}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9")
    run = subprocess.run([SNAKEMAKE, "--directory", str(workflow_copy), "--snakefile", str(workflow_copy / "Snakefile"),
                          "--cores", "2", "--resources", "gpu=0", "--keep-going", "--configfile",
                          str(workflow_copy / "overlay.yaml")], capture_output=True, text=True, env=env, check=False)
    assert run.returncode != 0
    logs = workflow_copy / "results" / "paper" / "logs" / "data"
    assert not (logs / "prepare_vtab.log").exists()  # laid out by hand: checked, not downloaded
    vtab = (logs / "check_vtab.log").read_text()
    assert "error: " in vtab and "data/vtab-1k/cifar/train800.txt: 0 lines, expected 800" in vtab
    checkpoint = (logs / "prepare_checkpoint_vit_base_patch16_224.orig_in21k.log").read_text()
    assert ("error: could not fetch ViT-B_16.npz (checkpoints.vit_base_patch16_224.orig_in21k in offline.yaml) "
            "from any mirror:\n  https://storage.googleapis.com/vit_models/imagenet21k/ViT-B_16.npz: ") in checkpoint
    fewshot = (logs / "prepare_fewshot.log").read_text()
    assert "error: 6 of 6 few-shot datasets could not be prepared" in fewshot
    assert "https://raw.githubusercontent.com/ZhangYuanhan-AI/NOAH/" in fewshot and "image-net.org" in fewshot
    assert not list((workflow_copy / "results" / "paper").glob("*/train/*"))  # no training started


def test_snakemake_prepares_checks_and_then_plans_nothing(workflow_copy, tmp_path_factory, monkeypatch):
    """The ImageNet variants from a test server through the prepare and check jobs; the second run plans nothing."""
    small_tables(monkeypatch)  # only the fixture archives of VTAB-1K and the few-shot sets (not used here)
    folder = tmp_path_factory.mktemp("mirror")
    facts = build_mirror(folder)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    target = "results/paper/data/imagenet.json"
    with FileServer(folder) as server:
        write_yaml(workflow_copy / "test-sources.yaml", sources_for(server.url(), facts))
        (workflow_copy / "overlay.yaml").write_text("paths: {sources: test-sources.yaml}\n")
        args = [SNAKEMAKE, target, "--directory", str(workflow_copy), "--snakefile", str(workflow_copy / "Snakefile"),
                "--cores", "2", "--configfile", str(workflow_copy / "overlay.yaml")]
        run = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
        assert run.returncode == 0, run.stderr
        report = json.loads((workflow_copy / "results/paper/data/prepared/imagenet.json").read_text())
        assert report["prepared"] == ["imagenet_v2", "imagenet_sketch", "imagenet_a", "imagenet_r"]
        manifest = json.loads((workflow_copy / target).read_text())
        assert manifest["images"] == 2400 and manifest["decoded"] is True
        requests = len(server.log)
        again = subprocess.run([*args, "--dry-run"], capture_output=True, text=True, env=env, check=False)
        assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr, again.stdout
        assert len(server.log) == requests


def test_snakemake_lint_is_clean(workflow_copy):
    run = snakemake(workflow_copy, "--lint")
    assert run.returncode == 0 and "good condition" in run.stdout + run.stderr, run.stdout + run.stderr


def test_slurm_profile_dry_run(workflow_copy):
    pytest.importorskip("snakemake_executor_plugin_slurm", reason="pip install -e '.[slurm]'")
    run = snakemake(workflow_copy, "--workflow-profile", str(workflow_copy / "workflow/profiles/slurm"), "--dry-run")
    assert run.returncode == 0, run.stderr + run.stdout
    assert job_counts(run.stdout)["total"] == 1402


def test_the_slurm_profile_asks_a_gpu_for_every_rule_that_declares_one():
    """A rule with ``gpu=GPU`` in its resources gets no GPU under SLURM unless the profile's set-resources name it
    (the weight-sharing diagnostic once ran on no GPU slot); and the test cluster's overrides cover the same rules."""
    declared = set()
    for path in sorted((ROOT / "workflow/rules").glob("*.smk")):
        for block in re.split(r"^rule ", path.read_text(), flags=re.M)[1:]:
            if re.search(r"^\s+gpu=GPU,", block, flags=re.M):
                declared.add(block.split(":", 1)[0].strip())
    assert {"train", "search", "evaluate", "standalone"} <= declared  # the reader finds them
    profile = yaml.safe_load((ROOT / "workflow/profiles/slurm/config.yaml").read_text())
    asked = {rule for rule, res in profile["set-resources"].items() if res.get("gpu")}
    assert asked == declared
    overrides = yaml.safe_load((ROOT / "tests/slurm/overrides.yaml").read_text())["set-resources"]
    assert declared - {"llm_train", "llm_search", "llm_evaluate"} <= set(overrides)


def test_paper_dry_run_with_table_2(workflow_copy):
    """experiments.llm on: Table 2's five tuned rows (three GLoRA searched) and two base models, planned without
    the LLaMA weights; rows naming an undeclared model are an error that says where to declare it."""
    on = workflow_copy / "llm.yaml"
    on.write_text("experiments: {llm: {enabled: true}}\n")
    run = snakemake(workflow_copy, "--dry-run", "-p", "--cores", "all", "--resources", "gpu=4", "--configfile", str(on))
    assert run.returncode == 0, run.stderr + run.stdout
    counts = job_counts(run.stdout)
    assert (counts["llm_train"], counts["llm_search"], counts["llm_export"], counts["llm_evaluate"]) == (5, 3, 5, 7)
    assert counts["check_llm"] == 1 and counts["total"] == 1402 + 1 + 5 + 3 + 5 + 7
    assert "python -m glora prepare llama " in run.stdout
    assert "--model checkpoints/llama-2-7b-hf --data data/llm/sharegpt.json" in run.stdout
    on.write_text("experiments: {llm: {enabled: true, runs: [{model: llama3_8b, method: glora, data: alpaca}]}}\n")
    run = snakemake(workflow_copy, "--dry-run", "--cores", "all", "--configfile", str(on))
    assert run.returncode != 0 and "['llama3_8b']" in run.stderr + run.stdout
