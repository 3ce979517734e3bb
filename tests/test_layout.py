"""The results layout has one owner (glora.layout): the configuration's {results}, the plan's paths and the
collectors of the tables all follow the suite's name."""

from __future__ import annotations

import json

from glora.config import backbone_of, load_config
from glora.layout import Layout
from glora.workflow import Job, jobs, result_targets

CI = ["config.yaml", "config/mini.yaml", "config/ci.yaml"]


def test_renaming_a_suite_moves_its_data_and_its_pre_trained_backbones_together():
    config = load_config(CI, ["name=renamed"])
    layout = Layout.of(config)
    assert layout.root == "results/renamed"
    assert config["paths"]["vtab"] == "results/renamed/data/vtab"
    # the pretrain -> train link: the checkpoints the experiments read are the ones rule pretrain writes
    for exp in ("vtab", "swin"):
        backbone, checkpoint = backbone_of(config, exp)
        assert checkpoint == layout.pretrained(backbone)
    assert config["experiments"]["llm"]["models"]["tiny_llama"].startswith(f"{layout.llm_data}/")
    assert all(t.startswith("results/renamed/") for t in result_targets(config))
    # the quick subset shares the mini suite's folder; the committed backbone is not a results path
    quick = load_config(["config.yaml", "config/mini.yaml", "config/quick.yaml"])
    assert Layout.of(quick).root == "results/mini" and quick["paths"]["checkpoint"].startswith("assets/")


def test_the_plan_cells_and_the_collectors_agree(tmp_path):
    """What a rule writes (Job.path) is what the tables read back (Layout.cells)."""
    config = load_config(["config.yaml", "config/mini.yaml"], [f"name={tmp_path.name}"])
    layout = Layout(str(tmp_path / "results"))
    written = []
    for job in [j for j in jobs(config) if j.exp == "vtab"][:5]:
        path = tmp_path / "results" / job.path(config, "evaluate").removeprefix(Layout.of(config).root + "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({}))
        written.append((path, job.variant, job.task, job.run))
    assert list(layout.cells("vtab", "evaluate")) == sorted(written)
    pattern = Layout("r").pattern("train", "weights.safetensors")
    assert pattern == "r/{exp}/train/{variant}/{task}/{run}/weights.safetensors"
    assert Job("dg", "glora_large", "imagenet", "shot16_seed0").path(config, "evaluate").endswith(
        "/dg/evaluate/glora_large/imagenet/shot16_seed0.json")
