"""apply_glora / set_choices / merge_glora / SearchSpace / supernet checkpoints on timm models."""

import json

import pytest
import torch
from torch import nn

import glora
from glora.models import create_backbone
from tests.conftest import pretrained_like, randomize_support

VIT_TARGETS = ["attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2"]


def max_diff(a, b):
    return (a - b).abs().max().item()


def test_apply_glora_on_vit_wraps_qkv_proj_fc1_fc2_and_freezes(vit_mini):
    names = glora.apply_glora(vit_mini, ranks=(8, 4))
    assert names == [f"blocks.{i}.{t}" for i in range(4) for t in VIT_TARGETS]
    assert list(glora.glora_layers(vit_mini)) == names
    trainable = {n for n, p in vit_mini.named_parameters() if p.requires_grad}
    support = {f"{n}.{t}" for n in names for t in glora.GLoRALinear.SUPPORT_TENSORS}
    assert trainable == support | {"head.weight", "head.bias"}
    # the adapted model keeps timm's state-dict keys for W0 and b0
    assert "blocks.0.attn.qkv.weight" in vit_mini.state_dict()


def test_apply_glora_on_vit_base_adapts_48_layers():
    model = create_backbone("vit_base_patch16_224.orig_in21k", num_classes=10)
    names = glora.apply_glora(model, ranks=(8,))
    assert len(names) == 48
    space = glora.SearchSpace.from_model(model)
    assert space.size() == 432**48
    assert len(str(space.size())) == 127


def test_apply_glora_on_swin_wraps_block_linears_and_reductions(swin_mini):
    linears = [n for n, m in swin_mini.named_modules() if isinstance(m, nn.Linear)]
    names = glora.apply_glora(swin_mini, ranks=(4,))
    assert names == [n for n in linears if n != "head.fc"]
    assert "layers.1.downsample.reduction" in names and "layers.2.downsample.reduction" in names
    assert len(names) == 2 + 4 * 6  # 2 reductions, 6 blocks of qkv/proj/fc1/fc2
    assert {n for n, p in swin_mini.named_parameters() if p.requires_grad and "head" in n} == {
        "head.fc.weight", "head.fc.bias"}


def check_merge(model, space, seeds, x, std=0.05):
    randomize_support(model, seed=99, std=std)
    for seed in seeds:
        choices = space.sample(seed)
        glora.set_choices(model, choices)
        with torch.no_grad():
            fast = model(x)
            glora.set_impl(model, "reference")
            reference = model(x)
            glora.set_impl(model, "fast")
            plain = glora.merge_glora(model, choices)
            merged = plain.eval()(x)
        assert not glora.glora_layers(plain)
        assert {type(m) for m in plain.modules()} & {glora.GLoRALinear} == set()
        assert max_diff(fast, reference) <= 1e-5, seed
        assert max_diff(merged, fast) <= 1e-5, seed


def test_merged_equals_supernet_vit_mini_50_choices(vit_mini):
    glora.apply_glora(vit_mini, ranks=(8, 4))
    space = glora.SearchSpace.from_model(vit_mini)
    check_merge(vit_mini, space, range(50), torch.randn(4, 3, 32, 32))


def test_merged_equals_supernet_swin_mini_50_choices(swin_mini):
    glora.apply_glora(swin_mini, ranks=(8, 4))
    space = glora.SearchSpace.from_model(swin_mini)
    check_merge(swin_mini, space, range(50), torch.randn(2, 3, 32, 32))


@pytest.mark.slow
def test_merged_equals_supernet_vit_base_3_choices():
    model = pretrained_like("vit_base_patch16_224.orig_in21k", num_classes=10)
    glora.apply_glora(model, ranks=(8, 4))
    space = glora.SearchSpace.from_model(model)
    # std 0.02: 12 blocks of 768-wide layers amplify fp32 rounding of larger perturbations past 1e-5
    check_merge(model, space, range(3), torch.randn(1, 3, 224, 224), std=0.02)


def test_fresh_and_all_none_supernets_equal_the_pretrained_model_exactly(vit_mini, swin_mini, rng):
    for model, x in ((vit_mini, torch.randn(2, 3, 32, 32)), (swin_mini, torch.randn(2, 3, 32, 32))):
        with torch.no_grad():
            expect = model(x)
            glora.apply_glora(model, ranks=(8, 4))
            space = glora.SearchSpace.from_model(model)
            none = {n: dict.fromkeys("ABCDE", "none") for n in space.names}
            for choices in [none] + [space.sample(rng) for _ in range(10)]:
                glora.set_choices(model, choices)
                assert torch.equal(model(x), expect)
            glora.set_choices(model, None)
            assert torch.equal(model(x), expect)  # whatever path is sampled
            randomize_support(model)
            glora.set_choices(model, none)
            assert torch.equal(model(x), expect)


def test_merge_leaves_the_supernet_untouched(vit_mini, rng):
    glora.apply_glora(vit_mini, ranks=(4,))
    randomize_support(vit_mini)
    space = glora.SearchSpace.from_model(vit_mini)
    before = {k: v.clone() for k, v in vit_mini.state_dict().items()}
    glora.set_choices(vit_mini, None)
    plain = glora.merge_glora(vit_mini, space.sample(rng))
    assert all(layer.choice is None for layer in glora.glora_layers(vit_mini).values())
    after = vit_mini.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert plain.state_dict().keys() == create_backbone("vit_mini", num_classes=7).state_dict().keys()
    assert plain.blocks[0].attn.qkv.weight.data_ptr() != vit_mini.blocks[0].attn.qkv.weight.data_ptr()


def test_count_params_equals_scalars_that_receive_gradient(vit_mini, rng):
    """Every scalar a choice uses gets a gradient; no other support scalar does.

    The loss reads each adapted layer's output through a random projection: through the classifier
    alone some used scalars get an exactly-zero gradient by symmetry (a scalar E on proj/fc2 shifts
    the residual stream uniformly, which every LayerNorm removes; the key bias cancels in softmax).
    """
    glora.apply_glora(vit_mini, ranks=(8, 4))
    randomize_support(vit_mini)
    space = glora.SearchSpace.from_model(vit_mini)
    gen = torch.Generator().manual_seed(0)
    probes = []
    hooks = [layer.register_forward_hook(lambda m, i, out: probes.append(
        (out * torch.randn(out.shape, generator=gen)).sum())) for layer in glora.glora_layers(vit_mini).values()]
    head = {id(p) for p in vit_mini.head.parameters()}
    x = torch.randn(2, 3, 32, 32)
    for _ in range(8):
        choices = space.sample(rng)
        glora.set_choices(vit_mini, choices)
        vit_mini.zero_grad(set_to_none=True)
        probes.clear()
        (vit_mini(x).pow(2).sum() + sum(probes)).backward()
        receiving = sum(int(torch.count_nonzero(p.grad)) for p in vit_mini.parameters()
                        if p.grad is not None and id(p) not in head)
        assert receiving == space.count_params(choices)
        assert all(p.grad is None for n, p in vit_mini.named_parameters() if not p.requires_grad)
    for hook in hooks:
        hook.remove()


def test_count_params_formula_on_a_known_choice(vit_mini):
    glora.apply_glora(vit_mini, ranks=(8, 4))
    space = glora.SearchSpace.from_model(vit_mini)
    choice = {"A": "lora8", "B": "lora4", "C": "lora4", "D": "vector", "E": "scalar"}
    choices = dict.fromkeys(space.names, choice)
    per_block = 0
    for inp, out in ((128, 384), (128, 128), (128, 512), (512, 128)):  # qkv, proj, fc1, fc2
        per_block += 8 * (out + inp) + 4 * (out + inp) + (inp * 4 + 4) + out + 1
    assert space.count_params(choices) == 4 * per_block
    assert space.min_params() == 0
    assert space.max_params() == 4 * sum(2 * 8 * (o + i) + 8 * i + 8 + 2 * o
                                         for i, o in ((128, 384), (128, 128), (128, 512), (512, 128)))


def test_search_space_sampling_and_json_round_trip(vit_mini):
    glora.apply_glora(vit_mini, ranks=(8, 4))
    space = glora.SearchSpace.from_model(vit_mini)
    assert space.size() == 900**16
    assert space.sample(3) == space.sample(3) and space.sample(3) != space.sample(4)
    choices = space.sample(3)
    text = space.to_json(choices)
    assert space.from_json(text) == choices
    assert list(json.loads(text)) == space.names
    with pytest.raises(ValueError, match="not valid JSON"):
        space.from_json("{")
    with pytest.raises(ValueError, match="missing"):
        space.from_json(json.dumps({k: v for k, v in list(choices.items())[1:]}))


def test_set_choices_errors(vit_mini, rng):
    with pytest.raises(ValueError, match="apply_glora"):
        glora.set_choices(vit_mini, None)
    glora.apply_glora(vit_mini, ranks=(8, 4))
    space = glora.SearchSpace.from_model(vit_mini)
    choices = space.sample(rng)
    missing = dict(list(choices.items())[:-1])
    with pytest.raises(ValueError, match=r"missing: \['blocks.3.mlp.fc2'\]"):
        glora.set_choices(vit_mini, missing)
    with pytest.raises(ValueError, match="unknown: \\['blocks.9.attn.qkv'\\]"):
        glora.set_choices(vit_mini, {**choices, "blocks.9.attn.qkv": choices["blocks.0.attn.qkv"]})
    bad = {**choices, "blocks.0.attn.qkv": {**choices["blocks.0.attn.qkv"], "D": "lora8"}}
    with pytest.raises(ValueError, match=r"layer 'blocks.0.attn.qkv'.*\['vector', 'scalar', 'none'\]"):
        glora.merge_glora(vit_mini, bad)
    with pytest.raises(ValueError, match="already has GLoRA layers"):
        glora.apply_glora(vit_mini)


def test_apply_glora_errors():
    conv = nn.Sequential(nn.Conv2d(3, 3, 1))
    with pytest.raises(ValueError, match="no default GLoRA targets for a Sequential"):
        glora.apply_glora(conv)
    with pytest.raises(ValueError, match="no nn.Linear in the Sequential matches"):
        glora.apply_glora(conv, target_modules=r".*")
    mlp = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match=r"not found: \['5'\]"):
        glora.apply_glora(mlp, target_modules=["0", "5"])
    with pytest.raises(ValueError, match="empty"):
        glora.apply_glora(mlp, ranks=(), target_modules=["0"])
    assert glora.apply_glora(mlp, ranks=(2,), target_modules=["2", "0"]) == ["0", "2"]


def test_supernet_save_load_round_trip(tmp_path, vit_mini, rng):
    glora.apply_glora(vit_mini, ranks=(8, 4))
    randomize_support(vit_mini)
    nn.init.normal_(vit_mini.head.weight)
    space = glora.SearchSpace.from_model(vit_mini)
    choices = space.sample(rng)
    glora.set_choices(vit_mini, choices)
    x = torch.randn(2, 3, 32, 32)
    expect = vit_mini(x)
    path = tmp_path / "supernet.safetensors"
    glora.save_supernet(vit_mini, path, metadata={"task": "cifar"})
    assert not list(tmp_path.glob("*.tmp*"))

    fresh = pretrained_like("vit_mini")  # same backbone weights, fresh support tensors and head
    glora.apply_glora(fresh, ranks=(8, 4))
    meta = glora.load_supernet(fresh, path)
    assert meta["task"] == "cifar"
    glora.set_choices(fresh, choices)
    assert torch.equal(fresh(x), expect)

    other = create_backbone("vit_mini", num_classes=3)
    glora.apply_glora(other, ranks=(8, 4))
    with pytest.raises(ValueError, match=r"head.weight: file \(7, 128\) vs model \(3, 128\)"):
        glora.load_supernet(other, path)
    other_ranks = create_backbone("vit_mini", num_classes=7)
    glora.apply_glora(other_ranks, ranks=(4,))
    with pytest.raises(ValueError, match="other GLoRA layers or ranks"):
        glora.load_supernet(other_ranks, path)
    with pytest.raises(ValueError, match="does not exist"):
        glora.load_supernet(fresh, tmp_path / "nope.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.safetensors is not a readable safetensors file"):
        glora.load_supernet(fresh, tmp_path / "junk.safetensors")


def test_bf16_autocast_forward_and_backward(vit_mini):
    """Mixed precision (off by default, as in the paper) runs and stays close to fp32."""
    glora.apply_glora(vit_mini, ranks=(8, 4))
    randomize_support(vit_mini)
    space = glora.SearchSpace.from_model(vit_mini)
    x = torch.randn(4, 3, 32, 32)
    for seed in range(5):
        glora.set_choices(vit_mini, space.sample(seed))
        with torch.no_grad():
            expect = vit_mini(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = vit_mini(x)
        assert out.dtype == torch.bfloat16
        assert max_diff(out.float(), expect) < 2e-2
        vit_mini.zero_grad(set_to_none=True)
        out.float().sum().backward()
        assert vit_mini.head.weight.grad is not None
