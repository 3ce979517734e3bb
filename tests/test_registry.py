"""Method and backbone registries: names map to declarative records; unknown names list the known ones; the
records, the configuration check and the Snakemake plan import no torch."""

import dataclasses
import inspect
import subprocess
import sys

import pytest

import glora
from glora.methods.record import Method, NoOptions, _resolve
from glora.methods.registry import METHODS, get_method, register_method
from glora.models import BACKBONES, get_backbone


def test_glora_is_registered_as_a_search_based_method():
    method = get_method("glora")
    assert method.search_based and method.mergeable and not method.retrain
    assert _resolve(method.apply_fn) is glora.apply_glora and method.merge is glora.merge_glora


def test_unknown_and_duplicate_methods_are_errors():
    with pytest.raises(ValueError, match=r"unknown method 'lora9'; registered: \[.*'glora'"):
        get_method("lora9")
    with pytest.raises(ValueError, match="already registered"):
        register_method(Method("glora", "GLoRA", "dup", apply_fn="glora.methods.glora.model:apply_glora"))


@pytest.mark.parametrize("name", list(METHODS))
def test_every_record_resolves_and_its_options_are_the_keywords_of_apply(name):
    """A record's options dataclass owns the defaults; its implementation takes exactly those keywords (plus the
    ones the pipeline sets itself), so the two cannot drift apart."""
    record = METHODS[name]
    for ref in (record.apply_fn, record.merge_fn, record.save_fn, record.load_fn, record.hooks_fn, record.space_fn,
                record.scorer_fn):
        assert ref is None or callable(_resolve(ref)), ref
    params = list(inspect.signature(_resolve(record.apply_fn)).parameters.values())[1:]
    keywords = {p.name for p in params}
    assert set(record.option_names()) | set(record.pipeline) == keywords
    defaults = {f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
                for f in dataclasses.fields(record.options)}
    # no default of its own, or (a public API such as glora.apply_glora) the record's
    assert all(p.default in (inspect.Parameter.empty, defaults[p.name]) for p in params if p.name in defaults)
    assert record.options is NoOptions or all(f.metadata.get("help") for f in dataclasses.fields(record.options))
    assert record.search_based == (record.space_fn is not None) == (record.scorer_fn is not None)


@pytest.mark.parametrize("name", list(METHODS))
def test_the_backbones_a_record_names_are_the_ones_its_implementation_adapts(name):
    from glora.models import create_backbone

    record = METHODS[name]
    for backbone, family in (("vit_mini", "VisionTransformer"), ("swin_mini", "SwinTransformer")):
        model = create_backbone(backbone, num_classes=3)
        extra = {"ranks": [2]} if name == "glora" else {}
        if family in record.backbones:
            record.apply(model, **extra)
        else:
            with pytest.raises(ValueError, match=f"not a {family}"):
                record.apply(model, **extra)


def test_the_plan_imports_no_torch():
    """`import glora.workflow` (what the Snakefile imports), the configuration with every method's options
    checked, and the whole plan of the paper and the mini suite: no torch."""
    code = ("import sys; import glora.workflow as w; from glora.config import load_config; "
            "[w.targets(c) and w.result_targets(c) and [w.stage_args(c, j.exp, j.variant, j.task, j.run) "
            "for j in w.jobs(c)] for c in (load_config(['config.yaml']), "
            "load_config(['config.yaml', 'config/mini.yaml']))]; "
            "heavy = sorted(m for m in ('torch', 'torchvision', 'timm', 'matplotlib', 'PIL') if m in sys.modules); "
            "print(heavy); sys.exit(1 if heavy else 0)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_backbone_table():
    assert get_backbone("vit_base_patch16_224.orig_in21k").timm_name == "vit_base_patch16_224.orig_in21k"
    assert get_backbone("vit_mini").input_size == (3, 32, 32)
    assert {"vit_mini", "swin_mini", "swin_base_patch4_window7_224.ms_in22k"} <= set(BACKBONES)
    with pytest.raises(ValueError, match="unknown backbone 'vit_huge'; known: "):
        get_backbone("vit_huge")
