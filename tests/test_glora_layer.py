"""GLoRALinear: Eq. 10 numerics, weight entanglement, gradients, parameter counts, merging."""

import pytest
import torch
from torch import nn

import glora
from glora.methods.glora.options import layer_options, option_params
from tests.conftest import all_choices

IN, OUT = 12, 10


def make_layer(ranks=(4, 2), bias=True, seed=0, random_support=True):
    torch.manual_seed(seed)
    layer = glora.GLoRALinear(nn.Linear(IN, OUT, bias=bias), ranks=ranks)
    if random_support:
        with torch.no_grad():
            for p in layer.support_tensors().values():
                p.normal_(0, 0.3)
    return layer


def plain_formula(layer, choice, x):
    """Eq. 10 written out independently of the layer's code, from the raw parameters."""
    w0 = layer.weight.detach().double()
    b0 = torch.zeros(OUT, dtype=torch.float64) if layer.bias is None else layer.bias.detach().double()
    p = {k: v.detach().double() for k, v in layer.support_tensors().items()}

    def dense(opt, d, u, shape):
        if opt.startswith("lora"):
            r = int(opt[4:])
            return d[:, :r] @ u[:r, :]
        if opt == "vector":
            return d[:, 0:1].expand(shape)
        if opt == "scalar":
            return d[0, 0].expand(shape)
        return torch.zeros(shape, dtype=torch.float64)

    def vec(opt, v):
        return {"vector": v, "scalar": v[0].expand(OUT), "none": torch.zeros(OUT, dtype=torch.float64)}[opt]

    a = dense(choice["A"], p["A_d"], p["A_u"], (OUT, IN))
    b = dense(choice["B"], p["B_d"], p["B_u"], (OUT, IN))
    c = dense(choice["C"], p["C_d"], p["C_u"], (IN, 1))
    w = w0 + w0 * a + b
    bias = b0 + b0 * vec(choice["D"], p["D"]) + vec(choice["E"], p["E"]) + (w0 @ c).squeeze(-1)
    return x.double() @ w.T + bias


def test_options_follow_eq11():
    opts = layer_options((8, 4))
    assert opts["A"] == opts["B"] == ("lora8", "lora4", "vector", "scalar", "none")
    assert opts["C"] == ("lora8", "lora4", "vector", "none")
    assert opts["D"] == opts["E"] == ("vector", "scalar", "none")
    assert len(all_choices(layer_options((8,)))) == 432  # 4*4*3*3*3, appendix E
    assert layer_options((8,), has_bias=False)["D"] == ("none",)


def test_support_tensor_shapes_and_init():
    layer = make_layer(ranks=(8, 4), random_support=False)
    shapes = {k: tuple(v.shape) for k, v in layer.support_tensors().items()}
    assert shapes == {"A_d": (OUT, 8), "A_u": (8, IN), "B_d": (OUT, 8), "B_u": (8, IN), "C_d": (IN, 8),
                      "C_u": (8, 1), "D": (OUT,), "E": (OUT,)}
    for name in ("A_d", "B_d", "C_d", "D", "E"):
        assert torch.count_nonzero(getattr(layer, name)) == 0
    for name in ("A_u", "B_u", "C_u"):
        assert torch.count_nonzero(getattr(layer, name)) == getattr(layer, name).numel()
    assert not layer.weight.requires_grad and not layer.bias.requires_grad
    assert all(p.requires_grad for p in layer.support_tensors().values())


@pytest.mark.parametrize("bias", [True, False])
def test_every_choice_fast_equals_reference_and_plain_formula(bias):
    layer = make_layer(bias=bias)
    x = torch.randn(3, 5, IN)
    for choice in all_choices(layer.options):
        expect = plain_formula(layer, choice, x)
        layer.set_choice(choice)
        for out in (layer(x), layer.fast_forward(x, choice), layer.reference_forward(x, choice)):
            assert out.shape == (3, 5, OUT)
            assert (out.double() - expect).abs().max() < 1e-5, choice


def grads(layer, x, choice, impl):
    """Gradients of a fixed random projection of the output w.r.t. x and every support tensor."""
    x = x.detach().clone().requires_grad_(True)
    layer.zero_grad(set_to_none=True)
    layer.set_choice(choice)
    layer.impl = impl
    out = layer(x)
    out.backward(torch.linspace(-1, 1, out.numel(), dtype=out.dtype).reshape(out.shape))
    layer.impl = "fast"
    return [x.grad] + [p.grad for p in layer.support_tensors().values()]


@pytest.mark.parametrize("bias", [True, False])
def test_every_choice_hand_written_backward_equals_autograd_of_the_plain_formula(bias):
    layer = make_layer(bias=bias).double()
    x = torch.randn(2, 3, IN, dtype=torch.float64)
    for choice in all_choices(layer.options):
        for got, expect in zip(grads(layer, x, choice, "fast"), grads(layer, x, choice, "reference")):
            if expect is None or not expect.any():
                assert got is None or not got.any(), choice
            else:
                assert torch.allclose(got, expect, atol=1e-12, rtol=1e-9), choice


def test_gradcheck_on_a_few_paths():
    layer = make_layer(ranks=(2, 1)).double()
    x = torch.randn(3, IN, dtype=torch.float64, requires_grad=True)
    params = list(layer.support_tensors().values())
    for choice in ({"A": "lora2", "B": "lora1", "C": "lora2", "D": "vector", "E": "scalar"},
                   {"A": "vector", "B": "scalar", "C": "vector", "D": "scalar", "E": "vector"},
                   {"A": "scalar", "B": "lora2", "C": "none", "D": "none", "E": "none"}):
        layer.set_choice(choice)
        assert torch.autograd.gradcheck(lambda x, *p: layer(x), (x, *params))


def test_fresh_layer_equals_base_exactly_for_every_choice():
    torch.manual_seed(0)
    base = nn.Linear(IN, OUT)
    layer = glora.GLoRALinear(base, ranks=(4, 2))
    x = torch.randn(2, 7, IN)
    expect = base(x)
    for choice in all_choices(layer.options):
        layer.set_choice(choice)
        assert torch.equal(layer(x), expect), choice


def test_weight_entanglement_slices():
    layer = make_layer(ranks=(4, 2))
    choice = {"A": "lora2", "B": "vector", "C": "lora4", "D": "scalar", "E": "vector"}
    a, b, c, d, e = layer.dense_support(choice)
    assert torch.equal(a, layer.A_d[:, :2] @ layer.A_u[:2])
    assert torch.equal(b, layer.B_d[:, :1])
    assert torch.equal(c, layer.C_d[:, :4] @ layer.C_u[:4])
    assert torch.equal(d, layer.D[:1]) and torch.equal(e, layer.E)
    a, b, c, *_ = layer.dense_support({"A": "scalar", "B": "lora4", "C": "vector", "D": "none", "E": "none"})
    assert torch.equal(a, layer.A_d[:1, :1]) and torch.equal(c, layer.C_d[:, :1])
    assert torch.equal(b, layer.B_d[:, :4] @ layer.B_u[:4])


def expected_grad_mask(layer, choice):
    """Which scalars of each support tensor the option reads (docs/architecture.md §2, entanglement)."""
    masks = {k: torch.zeros_like(v, dtype=torch.bool) for k, v in layer.support_tensors().items()}
    for t in ("A", "B", "C"):
        opt, d, u = choice[t], masks[f"{t}_d"], masks[f"{t}_u"]
        if opt.startswith("lora"):
            r = int(opt[4:])
            d[:, :r] = True
            u[:r] = True
        elif opt == "vector":
            d[:, 0] = True
        elif opt == "scalar":
            d[0, 0] = True
    for t in ("D", "E"):
        if choice[t] == "vector":
            masks[t][:] = True
        elif choice[t] == "scalar":
            masks[t][0] = True
    return masks


def test_only_selected_slices_get_gradients_and_count_params_matches():
    layer = make_layer(ranks=(4, 2))
    x = torch.randn(4, IN)
    for choice in all_choices(layer.options)[::7]:
        layer.zero_grad(set_to_none=True)
        layer.set_choice(choice)
        layer(x).pow(2).sum().backward()
        masks = expected_grad_mask(layer, choice)
        nonzero = 0
        for name, p in layer.support_tensors().items():
            grad = torch.zeros_like(p) if p.grad is None else p.grad
            assert torch.equal(grad != 0, masks[name]), (name, choice)
            nonzero += int(torch.count_nonzero(grad))
        params = sum(option_params(t, choice[t], IN, OUT) for t in "ABCDE")
        assert nonzero == params, choice


def test_degenerate_choice_is_lora():
    layer = make_layer(ranks=(4, 2))
    layer.set_choice({"A": "none", "B": "lora2", "C": "none", "D": "none", "E": "none"})
    merged = layer.merged()
    lora_weight = layer.weight + layer.B_d[:, :2] @ layer.B_u[:2]
    assert torch.allclose(merged.weight, lora_weight, atol=1e-6)
    assert torch.equal(merged.bias, layer.bias)
    x = torch.randn(5, IN)
    assert torch.allclose(layer(x), x @ lora_weight.T + layer.bias, atol=1e-5)


def test_merged_equals_layer_and_creates_bias_when_needed():
    layer = make_layer(bias=False)
    x = torch.randn(6, IN)
    layer.set_choice({"A": "vector", "B": "scalar", "C": "lora2", "D": "none", "E": "scalar"})
    merged = layer.merged()
    assert type(merged) is nn.Linear and merged.bias is not None
    assert (merged(x) - layer(x)).abs().max() < 1e-5
    layer.set_choice({"A": "lora4", "B": "none", "C": "none", "D": "none", "E": "none"})
    assert layer.merged().bias is None


def test_merged_uses_original_w0_in_the_prompt_term():
    """The C term is W0 @ C with the *original* W0, not the already-updated W'."""
    layer = make_layer()
    layer.set_choice({"A": "vector", "B": "vector", "C": "vector", "D": "none", "E": "none"})
    merged = layer.merged()
    expect = layer.bias + (layer.weight @ layer.C_d[:, :1]).squeeze(-1)
    assert torch.allclose(merged.bias, expect, atol=1e-6)


def test_sampling_mode_is_uniform_and_seeded():
    layer = make_layer(ranks=(8, 4))
    layer.generator = torch.Generator().manual_seed(0)
    draws = [layer.sample_choice() for _ in range(4000)]
    for t in "ABCDE":
        opts = layer.options[t]
        counts = [sum(d[t] == o for d in draws) for o in opts]
        expected = len(draws) / len(opts)
        assert max(abs(c - expected) for c in counts) < 0.1 * expected, (t, counts)
    again = torch.Generator().manual_seed(0)
    assert [layer.sample_choice(again) for _ in range(10)] == draws[:10]
    layer.set_choice(None)
    x = torch.randn(2, IN)
    outs = {tuple(layer(x).flatten().tolist()) for _ in range(20)}
    assert len(outs) > 1  # each forward takes a newly sampled path


@pytest.mark.parametrize("ranks, message", [((), "empty"), ((0,), "positive"), ((-2, 4), "positive"),
                                            ((4, 4), "distinct"), ((True,), "positive"), (4, "sequence")])
def test_bad_ranks(ranks, message):
    with pytest.raises(ValueError, match=message):
        glora.GLoRALinear(nn.Linear(3, 3), ranks=ranks)


def test_bad_choice_lists_valid_options():
    layer = make_layer(ranks=(8, 4))
    with pytest.raises(ValueError, match=r"unknown option 'lora3' for support tensor A.*'lora8', 'lora4'"):
        layer.set_choice({"A": "lora3", "B": "none", "C": "none", "D": "none", "E": "none"})
    with pytest.raises(ValueError, match="'lora8', 'lora4', 'vector', 'none'"):
        layer.set_choice({"A": "none", "B": "none", "C": "scalar", "D": "none", "E": "none"})
    with pytest.raises(ValueError, match="exactly the keys"):
        layer.set_choice({"A": "none"})
    layer.set_choice(None)
    with pytest.raises(ValueError, match="set_choice"):
        layer.merged()
    with pytest.raises(ValueError, match="nn.Linear"):
        glora.GLoRALinear(nn.Conv2d(3, 3, 1))
