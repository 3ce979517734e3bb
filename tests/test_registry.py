"""Method and backbone registries: names map to declarative records; unknown names list the known ones."""

import pytest

import glora
from glora.methods.registry import Method, get_method, register_method
from glora.models import BACKBONES, get_backbone


def test_glora_is_registered_as_a_search_based_method():
    method = get_method("glora")
    assert method.search_based and method.apply is glora.apply_glora and method.merge is glora.merge_glora


def test_unknown_and_duplicate_methods_are_errors():
    with pytest.raises(ValueError, match=r"unknown method 'lora9'; registered: \[.*'glora'"):
        get_method("lora9")
    with pytest.raises(ValueError, match="already registered"):
        register_method(Method("glora", glora.apply_glora, None, False, "dup"))


def test_backbone_table():
    assert get_backbone("vit_base_patch16_224.orig_in21k").timm_name == "vit_base_patch16_224.orig_in21k"
    assert get_backbone("vit_mini").input_size == (3, 32, 32)
    assert {"vit_mini", "swin_mini", "swin_base_patch4_window7_224.ms_in22k"} <= set(BACKBONES)
    with pytest.raises(ValueError, match="unknown backbone 'vit_huge'; known: "):
        get_backbone("vit_huge")
