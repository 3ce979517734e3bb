"""Structural re-parameterisation (Sec. 2.3, Eq. 12-14) of a trained run into a plain timm model.

The export is verified before it is written: the plain model must give the adapted model's logits on a
batch of real validation images. It is saved as safetensors with a JSON card beside it (backbone, task,
choices, parameter counts, source commit), which :mod:`glora.evaluate` reads. A method that cannot be merged
is exported as its adapted model, and the card says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from glora.atomic import write_json
from glora.errors import ConfigError, WeightsError
from glora.search_space import read_choices
from glora.weights import num_classes_of

#: the largest |plain - adapted| logit difference accepted, relative to the largest |logit|
TOLERANCE = 1e-4


@torch.no_grad()
def run_export(config: Mapping, run, weights: str | Path, out: str | Path, *, choices: str | Path | None = None,
               device: str = "cpu", quiet: bool = True) -> dict:
    """``python -m glora export``: write ``out``/``model.safetensors`` and ``out``/``card.json``."""
    from safetensors.torch import save_model

    from glora.atomic import sha256
    from glora.devices import resolve_device
    from glora.experiment import batches, build_model, open_split
    from glora.methods.glora.model import set_choices
    from glora.provenance import git_commit, provenance
    from glora.search_space import SearchSpace
    from glora.weights import safetensors_path

    out = Path(out)
    device = resolve_device(device)
    spec = run.spec
    model = build_model(config, run, num_classes_of(weights), weights=weights).to(device).eval()
    card = {"format": "glora-export/1", "backbone": config["backbone"], "num_classes": num_classes_of(weights),
            "run": run.to_dict(), "method_kwargs": run.method_kwargs(config), "weights": str(weights),
            "weights_sha256": sha256(Path(weights))}
    context = {}
    if spec.retrain and run.choices is None:
        raise ConfigError(f"{run.method} retrains its searched subnet: pass --choices (the search's best.json)")
    if spec.search_based and not spec.retrain:
        if choices is None:
            raise ConfigError(f"{run.method} is search-based: pass --choices (the search's best.json)")
        space = SearchSpace.from_model(model)
        try:
            context["choices"] = space.validate(read_choices(choices))
        except WeightsError:
            raise
        except ValueError as err:  # a layer or option this supernet does not have
            raise WeightsError(f"choices file {choices} does not fit this {run.method} supernet: {err}; was it "
                               "searched on these weights?") from None
        set_choices(model, context["choices"])
        card.update(choices=context["choices"], adapter_params=space.count_params(context["choices"]),
                    choices_file=str(choices))
    if "adapter_params" not in card:
        from glora.methods import count_trainable

        card["adapter_params"] = count_trainable(model)
    plain = spec.merge(model, **context) if spec.mergeable else model
    card["merged"] = spec.mergeable
    # A merged C or E term gives a bias to a linear that the architecture builds without one (Swin's patch-merging
    # reductions): the plain model is then the timm model plus these biases, which the card lists.
    def had_bias(name: str) -> bool:  # the adapted module, or the layer a baseline's wrapper holds
        module = model.get_submodule(name)
        return getattr(getattr(module, "base", module), "bias", None) is not None

    card["added_biases"] = sorted(n for n, m in plain.named_modules() if isinstance(m, torch.nn.Linear)
                                  and m.bias is not None and not had_bias(n)) \
        if card["merged"] and plain is not model else []
    val = batches(config, open_split(config, run, "val"), 32, device, shuffle=False, augmented=False, quiet=quiet)
    x, _ = next(val.epoch())
    expected, got = model(x), plain.eval()(x)
    diff = (expected - got).abs().max().item()
    scale = max(1.0, expected.abs().max().item())
    if not diff <= TOLERANCE * scale:
        raise ValueError(f"export check failed: the plain model differs from the adapted one by {diff:.3g} "
                         f"(allowed {TOLERANCE * scale:.3g}) on {len(x)} validation images; not written")
    card.update(verified_images=len(x), max_abs_logit_diff=diff,
                inference_params=sum(p.numel() for p in plain.parameters()),
                source_commit=git_commit(), provenance=provenance(config, seed=run.seed, device=device))
    with safetensors_path(out / "model.safetensors") as tmp:
        save_model(plain.cpu(), str(tmp), metadata={"card": "card.json", "backbone": config["backbone"]})
    write_json(out / "card.json", card)
    return card
