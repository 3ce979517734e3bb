"""The Table 1 baselines behind one registry: names, exact parameter counts on ViT-B/16, merge exactness,
training touching only each method's parameters, NOAH's search-then-retrain, and Table 4's measurement."""

from __future__ import annotations

import csv
import json
import statistics

import pytest
import timm
import torch
from conftest import pretrained_like
from engine_fixtures import ROOT, make_world

import glora.methods as methods
from glora.cli import main
from glora.config import load_config, method_settings
from glora.data.vtab import VTAB_TASKS
from glora.methods.base import Mergeable
from glora.methods.registry import METHODS, get_method
from glora.models import create_backbone

TABLE1_ORDER = ["full", "linear", "bitfit", "vpt_shallow", "vpt_deep", "adapter", "adaptformer", "lora", "ssf",
                "fact_tt", "fact_tk", "repadapter", "noah", "glora"]
#: from the records (glora/methods): the baselines that fold into the backbone, and those that adapt ViTs only
MERGEABLE = [n for n, m in METHODS.items() if m.mergeable and n not in ("full", "linear", "glora")]
VIT_ONLY = [n for n, m in METHODS.items() if m.backbones == ("VisionTransformer",)]
PAPER = load_config([ROOT / "config.yaml"])


def vit_b(num_classes: int = 100) -> torch.nn.Module:
    """ViT-B/16 on the meta device: the shapes of the paper's backbone without allocating its weights."""
    with torch.device("meta"):
        return timm.create_model("vit_base_patch16_224", num_classes=num_classes)


def count_on_vit_b(name: str, **kwargs) -> int:
    return methods.count_trainable(methods.apply(name, vit_b(), **kwargs))


def kwargs_of(method: str, task: str | None = None, config=PAPER) -> dict:
    kwargs = method_settings(config, method, task)
    return {"ranks": [4, 2], **kwargs} if method == "glora" else kwargs


def test_registry_lists_every_method_in_table_1_order():
    assert methods.names() == TABLE1_ORDER
    # what the records say, as Table 1 and the source papers have it
    assert MERGEABLE == ["bitfit", "lora", "ssf", "fact_tt", "fact_tk", "repadapter"]
    assert VIT_ONLY == ["vpt_shallow", "vpt_deep", "fact_tt", "fact_tk", "noah"]
    assert [m.display for m in METHODS.values()] == [
        "Full", "Linear", "BitFit", "VPT-Shallow", "VPT-Deep", "Adapter", "AdaptFormer", "LoRA", "SSF", "FacT-TT",
        "FacT", "RepAdapter", "NOAH", "GLoRA"]
    model = create_backbone("vit_mini", num_classes=3)
    assert methods.apply("lora", model) is model  # adapted in place and returned


@pytest.mark.parametrize("name, kwargs, expected", [
    ("lora", {"rank": 8}, 294_912),                 # 12 · 8 · (768 + 2304): Table 1's 0.29M exactly
    ("bitfit", {}, 102_912),                        # 12 · 8,448 + 2 · 768 biases -> 0.10M
    ("adapter", {"bottleneck": 8}, 156_768),        # 12 · (768·8 + 8 + 8·768 + 768) -> 0.16M
    ("adaptformer", {"bottleneck": 8}, 156_768),    # -> 0.16M
    ("repadapter", {"dim": 8, "groups": 2}, 239_808),   # 24 · 9,992; 0.22M without biases, below
    ("ssf", {}, 205_824),                           # 0.21M; 0.24M with the mean VTAB head, below
    ("vpt_shallow", {"length": 10}, 7_680),
    ("vpt_deep", {"length": 10}, 92_160),           # 12 · 10 · 768
    ("fact_tt", {"rank": 8}, 21_504),               # 2·768·8 + 144 · 8²
    ("fact_tk", {"rank": 32}, 86_528),              # 2·768·32 + 32³ + 144 · 32
    ("linear", {}, 0),
    ("full", {}, 85_798_656),
])
def test_parameter_counts_on_vit_b16(name, kwargs, expected):
    assert count_on_vit_b(name, **kwargs) == expected


def test_table_1_parameter_column_from_the_configured_hyperparameters():
    tasks = list(VTAB_TASKS)
    mean = {name: statistics.mean(count_on_vit_b(name, **kwargs_of(name, t)) for t in tasks) / 1e6
            for name in ("fact_tk", "vpt_shallow", "vpt_deep")}
    assert round(mean["fact_tk"], 2) == 0.07     # FacT-TK per-task ranks: Table 1's FacT 0.07
    assert round(mean["vpt_shallow"], 2) == 0.06  # Table 1's VPT-Shallow 0.06
    # VPT-Deep: the published per-task deep lengths are not available (config.yaml comment); the lengths we
    # have give 0.68M against Table 1's 0.53M -- the footnote of the regenerated table says so.
    assert round(mean["vpt_deep"], 2) == 0.68
    for name in ("bitfit", "adapter", "adaptformer", "lora"):
        assert round(count_on_vit_b(name, **kwargs_of(name)) / 1e6, 2) == \
            {"bitfit": 0.10, "adapter": 0.16, "adaptformer": 0.16, "lora": 0.29}[name]
    # RepAdapter's 0.22M counts its projection weights only (its biases fold into the backbone's)
    model = methods.apply("repadapter", vit_b(), **kwargs_of("repadapter"))
    weights_only = sum(p.numel() for n, p in model.named_parameters() if p.requires_grad and "head" not in n
                       and not n.endswith(("adapter_A.bias", "bias_B")))
    assert weights_only == 221_184 and round(weights_only / 1e6, 2) == 0.22
    # SSF's 0.24M includes the classifier head: the mean over the 19 VTAB heads (classes · 769)
    classes = [VTAB_TASKS[t].num_classes for t in tasks]
    with_head = count_on_vit_b("ssf") + statistics.mean(c * 769 for c in classes)
    assert round(with_head / 1e6, 2) == 0.24


@pytest.mark.parametrize("name", MERGEABLE)
@pytest.mark.parametrize("backbone", ["vit_mini", "swin_mini"])
def test_mergeable_methods_merge_into_a_plain_timm_model_with_equal_outputs(name, backbone):
    if backbone == "swin_mini" and name in VIT_ONLY:
        pytest.skip("ViT only")
    model = methods.apply(name, pretrained_like(backbone), **kwargs_of(name, config={"methods": {}}))
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():  # trained-looking adapter tensors (many start at zero)
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=gen) * 0.05)
    model.eval()
    x = torch.randn(4, 3, 32, 32, generator=gen)
    expected = model(x)
    plain = get_method(name).merge(model).eval()
    assert not any(isinstance(m, Mergeable) for m in plain.modules())
    fresh = create_backbone(backbone, num_classes=7)
    assert {k: v.shape for k, v in plain.state_dict().items()} == {k: v.shape for k, v in fresh.state_dict().items()}
    fresh.load_state_dict(plain.state_dict())  # a plain timm model of the backbone's architecture
    torch.testing.assert_close(fresh.eval()(x), expected, atol=1e-5, rtol=1e-5)
    assert (expected - model(x)).abs().max() == 0  # the adapted model is left untouched


@pytest.mark.parametrize("name", TABLE1_ORDER)
def test_one_training_step_changes_only_the_methods_parameters(name):
    model = methods.apply(name, pretrained_like("vit_mini", num_classes=5), **kwargs_of(name, config={"methods": {}}))
    model.train()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    before = {n: p.detach().clone() for n, p in model.state_dict().items()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    if name in ("glora", "noah"):
        get_method(name).train_hooks(model)[0](torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(0)
    for _ in range(2):  # two steps: a zero-initialised factor gets its gradient after its partner moved
        loss = torch.nn.functional.cross_entropy(model(torch.randn(8, 3, 32, 32, generator=gen)),
                                                 torch.arange(8) % 5)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    changed = {n for n, t in model.state_dict().items() if not torch.equal(t, before[n])}
    params = {n for n, _ in model.named_parameters()}
    assert changed & params <= trainable
    head = {n for n in trainable if n.startswith("head")}
    if name != "linear":
        assert (changed & params) - head, f"{name}: no method parameter moved"


@pytest.mark.parametrize("name", VIT_ONLY)
def test_vit_only_methods_refuse_swin_by_name(name):
    with pytest.raises(ValueError, match="adapts VisionTransformer models, not a SwinTransformer"):
        methods.apply(name, create_backbone("swin_mini", num_classes=3), **kwargs_of(name, config={"methods": {}}))


def test_applying_twice_and_unknown_hyperparameters_are_clear_errors(tmp_path):
    model = methods.apply("lora", create_backbone("vit_mini", num_classes=3))
    with pytest.raises(ValueError, match="already has LoRALinear modules"):
        methods.apply("lora", model)
    from glora.run import Run

    message = r"methods.lora has unknown key\(s\) \['rnk'\]; lora takes \['rank', "
    with pytest.raises(ValueError, match=rf"--set methods.lora.rnk=4: {message}"):  # when the config is loaded
        load_config([ROOT / "config.yaml"], ["methods.lora.rnk=4"])
    config = {**PAPER, "methods": {**PAPER["methods"], "lora": {"rnk": 4}}}  # built without load_config
    with pytest.raises(ValueError, match=message):
        Run("lora", "dtd").method_kwargs(config)
    assert Run("fact_tk", "dtd").method_kwargs(PAPER) == {"rank": 16, "scale": 0.01}  # per-task entry
    assert Run("fact_tk", "some_other_task").method_kwargs(PAPER) == {"rank": 32, "scale": 1.0}


def test_vpt_prompts_are_removed_after_the_last_block():
    model = methods.apply("vpt_deep", create_backbone("vit_mini", num_classes=3), length=3)
    tokens = model.forward_features(torch.randn(2, 3, 32, 32))
    assert tokens.shape == (2, 17, 128)  # class token + 16 patches, prompts gone


# ---------------------------------------------------------------------------------------------
# NOAH: supernet -> search -> retrain -> export -> evaluate, through the CLI stages
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_world(tmp_path_factory.mktemp("noah_world"))


def stage(world, *argv):
    args = [a for path in world["config"] for a in ("--config", str(path))]
    return main([argv[0], *args, "--quiet", "--device", "cpu", "--set", "methods.noah.budget_m=0.01", *argv[1:]])


def test_noah_searches_its_supernet_then_retrains_the_subnet(world, tmp_path):
    sup, found, re, exp = (tmp_path / d for d in ("supernet", "search", "retrain", "export"))
    assert stage(world, "train", "--method", "noah", "--task", "toy", "--out", str(sup)) == 0
    metrics = json.loads((sup / "metrics.json").read_text())
    assert metrics["trainable_params"] == 4 * (10 * 128 + 10 * 512 + 2 * 10 * 128 + 10 + 128)  # the largest sizes
    assert stage(world, "search", "--method", "noah", "--task", "toy", "--weights", str(sup / "weights.safetensors"),
                 "--out", str(found)) == 0
    best = json.loads((found / "best.json").read_text())
    assert 0 < best["params"] <= 10_000 and set(best["choices"]) == {f"blocks.{i}" for i in range(4)}
    with open(found / "candidates.csv") as f:
        assert len(list(csv.DictReader(f))) == best["candidates_scored"] > 1
    assert stage(world, "train", "--method", "noah", "--task", "toy", "--choices", str(found / "best.json"),
                 "--out", str(re)) == 0
    retrained = json.loads((re / "metrics.json").read_text())
    assert retrained["trainable_params"] == best["params"]  # exactly the subnet's modules, trained afresh
    assert retrained["train_split"] == "train800val200"
    assert stage(world, "export", "--method", "noah", "--task", "toy", "--weights", str(re / "weights.safetensors"),
                 "--choices", str(found / "best.json"), "--out", str(exp)) == 0
    card = json.loads((exp / "card.json").read_text())
    assert card["merged"] is False and card["adapter_params"] == best["params"]
    assert stage(world, "evaluate", "--model", str(exp / "model.safetensors"), "--out", str(tmp_path / "e.json")) == 0
    assert json.loads((tmp_path / "e.json").read_text())["test"]["images"] == 32


def test_choices_at_training_time_are_only_for_retrained_methods(world, tmp_path, capsys):
    (tmp_path / "c.json").write_text("{}")
    assert stage(world, "train", "--method", "lora", "--task", "toy", "--choices", str(tmp_path / "c.json"),
                 "--out", str(tmp_path / "x")) == 2
    assert "train --choices is for methods retrained after their search (NOAH), not 'lora'" in capsys.readouterr().err


def test_efficiency_writes_table_4_rows_for_every_method(world, tmp_path):
    out = tmp_path / "t4.csv"
    assert stage(world, "efficiency", "--out", str(out), "--set", "efficiency.passes=2",
                 "--set", "efficiency.warmup=1", "--set", "efficiency.batch_sizes=[1,2]") == 0
    with open(out) as f:
        rows = {r["method"]: r for r in csv.DictReader(f)}
    assert list(rows) == ["backbone", *TABLE1_ORDER]
    for name in ["full", "linear", *MERGEABLE, "glora"]:  # merged: the backbone's parameters and FLOPs exactly
        assert rows[name]["merged"] == "True" and rows[name]["extra_params"] == "0", name
        assert float(rows[name]["extra_gflops"]) == 0.0, name
    for name in ("vpt_shallow", "vpt_deep", "adapter", "adaptformer", "noah"):
        assert rows[name]["merged"] == "False" and int(rows[name]["extra_params"]) > 0, name
        assert float(rows[name]["extra_gflops"]) > 0, name
    assert rows["adapter"]["extra_params"] == str(4 * (128 * 8 + 8 + 8 * 128 + 128))
    assert float(rows["vpt_deep"]["extra_gflops"]) > float(rows["adapter"]["extra_gflops"])  # longer sequence
    assert float(rows["backbone"]["relative_bs1"]) == 1.0 and float(rows["lora"]["throughput_bs2"]) > 0
    settings = json.loads(out.with_suffix(".json").read_text())
    assert settings["batch_sizes"] == [1, 2] and settings["backbone"] == "vit_mini"


@pytest.mark.parametrize("name", ["lora", "ssf", "fact_tt", "fact_tk", "repadapter"])
def test_merge_is_exact_on_vit_b16(name):
    """The paper's backbone at its input size (one image: ~1 s per pass on CPU)."""
    torch.manual_seed(0)
    model = timm.create_model("vit_base_patch16_224", num_classes=10)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Linear) and m.bias is not None:
                m.bias.normal_(0, 0.02)
    methods.apply(name, model, **kwargs_of(name, "caltech101"))  # FacT: rank 16/32, scale 10
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.02)
    model.eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        expected, merged = model(x), get_method(name).merge(model).eval()(x)
    torch.testing.assert_close(merged, expected, atol=1e-5, rtol=1e-5)


def test_published_counts_that_differ_carry_a_footnote():
    noted = {n for n in methods.names() if get_method(n).param_note}
    assert noted == {"vpt_deep", "ssf", "repadapter"}
    assert "0.53M" in get_method("vpt_deep").param_note and "221,184" in get_method("repadapter").param_note


@pytest.mark.parametrize("name", ["bitfit", "lora", "ssf", "fact_tk", "repadapter", "vpt_deep", "adaptformer"])
def test_baselines_train_export_and_evaluate_through_the_stages(world, tmp_path, name):
    train, export = tmp_path / "train", tmp_path / "export"
    assert stage(world, "train", "--method", name, "--task", "toy", "--out", str(train),
                 "--set", "train.baseline_epochs=1", "--set", "train.warmup_epochs=0") == 0
    assert json.loads((train / "metrics.json").read_text())["train_split"] == "train800val200"
    assert stage(world, "export", "--method", name, "--task", "toy", "--weights", str(train / "weights.safetensors"),
                 "--out", str(export)) == 0
    card = json.loads((export / "card.json").read_text())
    assert card["merged"] is (name in MERGEABLE) and card["added_biases"] == []
    assert card["adapter_params"] == json.loads((train / "metrics.json").read_text())["trainable_params"]
    result = tmp_path / "e.json"
    assert stage(world, "evaluate", "--model", str(export / "model.safetensors"), "--out", str(result)) == 0
    assert json.loads(result.read_text())["merged"] is (name in MERGEABLE)
