"""The evolutionary search (appendix B) on a synthetic objective, and the in-place merge it scores candidates with."""

from __future__ import annotations

import pytest
import torch
from conftest import randomize_support

import glora
from glora.methods.glora.model import SubnetMerger
from glora.search import Evolution, EvolutionSettings


@pytest.fixture
def space(vit_mini):
    glora.apply_glora(vit_mini, ranks=(4, 2))
    return glora.SearchSpace.from_model(vit_mini)


def matches(target: dict):
    """A synthetic accuracy: the fraction of (layer, tensor) genes equal to ``target``'s."""
    def evaluate(choices: dict) -> float:
        genes = [(n, t) for n in target for t in target[n]]
        return sum(choices[n][t] == target[n][t] for n, t in genes) / len(genes)
    return evaluate


def test_search_improves_on_random_sampling_within_the_cap(space):
    target = space.sample(99)
    cap = 40_000
    settings = EvolutionSettings(population=20, parents=5, mutations=10, crossovers=10, iterations=8, seed=0)
    search = Evolution(space, matches(target), cap, settings)
    best = search.run()
    first = [r for r in search.rows if r["generation"] == 0]
    assert len(first) == 20 and {r["origin"] for r in first} == {"random"}
    assert len(search.rows) <= 20 * 9 and len({r["genes"] for r in search.rows}) == len(search.rows)
    assert all(r["params"] <= cap for r in search.rows)
    assert {r["origin"] for r in search.rows} >= {"mutation", "crossover"}
    assert best["val_acc"] > max(r["val_acc"] for r in first) + 0.05  # evolution, not luck
    assert best["val_acc"] == max(r["val_acc"] for r in search.rows)
    assert space.count_params(search.choices(best["genes"])) == best["params"]


def test_a_tight_cap_is_met_by_repairing_random_subnets(space):
    cap = 500  # far below a typical random subnet (~30k here)
    search = Evolution(space, lambda c: 0.5, cap, EvolutionSettings(population=10, iterations=1, seed=1))
    search.run()
    assert len(search.rows) >= 10 and all(r["params"] <= cap for r in search.rows)


def test_the_same_seed_gives_the_same_search(space):
    target = space.sample(5)

    def genes(seed: int) -> list:
        search = Evolution(space, matches(target), 40_000, EvolutionSettings(
            population=8, parents=3, mutations=4, crossovers=4, iterations=3, seed=seed))
        search.run()
        return [r["genes"] for r in search.rows]

    assert genes(7) == genes(7) != genes(8)


def test_budget_below_the_smallest_subnet_is_an_error(space):
    with pytest.raises(ValueError, match="below the smallest subnet"):
        Evolution(space, lambda c: 0.0, 0, EvolutionSettings())


def test_the_search_merger_equals_merge_glora_and_the_supernet(vit_mini, rng):
    glora.apply_glora(vit_mini, ranks=(8, 4))
    randomize_support(vit_mini)
    space = glora.SearchSpace.from_model(vit_mini)
    merge = SubnetMerger(vit_mini)
    x = torch.randn(4, 3, 32, 32)
    vit_mini.eval()
    for _ in range(5):
        choices = space.sample(rng)
        fresh = glora.merge_glora(vit_mini, choices).eval()
        plain = merge(choices)
        glora.set_choices(vit_mini, choices)
        with torch.no_grad():
            assert torch.allclose(plain(x), fresh(x), atol=1e-5, rtol=0)
            assert torch.allclose(plain(x), vit_mini(x), atol=1e-5, rtol=0)  # as merge_glora vs supernet
        weights = {n: merge.targets[n].weight for n in merge.targets}
        for name, w in weights.items():  # W_uni within float32 rounding of the float64 merge
            assert torch.allclose(w, fresh.get_submodule(name).weight, rtol=0, atol=1e-6)
