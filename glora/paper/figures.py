"""The paper's figures from a run's results, PNG (300 dpi) and PDF, one seaborn style throughout.

- Figure 2: few-shot top-1 against shots (log2 axis), one panel per dataset and their average, one line per
  method (mean over seeds; the paper's GLoRA curve dashed where published).
- Figure 3: searched GLoRA parameters per layer type (QKV, Proj, FC1, FC2) in each VTAB group.
- Figure 4: which option each layer's support tensors A-E chose, counted over the VTAB tasks.
- Figure 5: t-SNE of the test-set features of one task under GLoRA and FacT.
- Figure 6: one few-shot curve per dataset.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from glora.layout import Layout
from glora.paper.tables import display_name
from glora.workflow import RUN

LAYER_TYPES = {"qkv": "QKV", "proj": "Proj", "fc1": "FC1", "fc2": "FC2"}


def _style():
    import matplotlib

    matplotlib.use("Agg")
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="paper", palette="colorblind", font_scale=1.1)
    return sns


def save(fig, stem: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    from glora.atomic import atomic_path

    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    for path, options in zip(paths, ({"dpi": 300}, {"metadata": {"CreationDate": None}})):  # no date: same bytes
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=path.suffix[1:], bbox_inches="tight", **options)
    plt.close(fig)
    return paths


def fewshot_curves(evals: pd.DataFrame) -> pd.DataFrame:
    """Mean top-1 over seeds per (method, dataset, shots), plus the ``average`` over datasets."""
    df = evals.assign(method=[display_name(v, m) for v, m in zip(evals["variant"], evals["method"])])
    mean = df.groupby(["method", "task", "shot"], as_index=False)["top1"].mean()
    average = mean.groupby(["method", "shot"], as_index=False)["top1"].mean().assign(task="average")
    return pd.concat([mean, average], ignore_index=True)


def _curve(ax, data: pd.DataFrame, title: str, reference: pd.DataFrame | None = None) -> None:
    import seaborn as sns

    sns.lineplot(data=data, x="shot", y="top1", hue="method", marker="o", ax=ax)
    if reference is not None and len(reference):  # the paper's numbers: one dashed line / marker set per method
        for (method, rows), marker in zip(reference.groupby("method", sort=False), "xsd^v"):
            rows = rows.sort_values("shots")
            ax.plot(rows["shots"], rows["accuracy"], color="k", marker=marker,
                    linestyle="--" if len(rows) > 1 else "none", label=f"{method} (paper)")
    shots = sorted(data["shot"].unique())
    ax.set_xscale("log", base=2)
    ax.set_xticks(shots, [str(int(s)) for s in shots])
    ax.set(title=title, xlabel="shots per class", ylabel="top-1 (%)")
    ax.legend(fontsize="small")


def figure2(evals: pd.DataFrame, out: Path, reference: pd.DataFrame | None = None) -> list[Path]:
    """Figure 2 (a grid: every dataset and the average) and Figure 6 (one file per dataset)."""
    import matplotlib.pyplot as plt

    _style()
    curves = fewshot_curves(evals)
    panels = [*sorted(set(curves["task"]) - {"average"}), "average"]
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, panels):
        ref = reference[reference["dataset"] == panel] if reference is not None else None
        _curve(ax, curves[curves["task"] == panel], panel, ref)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    fig.suptitle("Few-shot top-1 against shots")
    fig.tight_layout()
    written = save(fig, out / "figure2_fewshot")
    for panel in panels[:-1]:
        fig, ax = plt.subplots(figsize=(4.6, 3.6))
        ref = reference[reference["dataset"] == panel] if reference is not None else None
        _curve(ax, curves[curves["task"] == panel], panel, ref)
        fig.tight_layout()
        written += save(fig, out / f"figure6_fewshot_{panel}")
    return written


def searched_choices(results: Path, exp: str = "vtab") -> pd.DataFrame:
    """One row per (variant, task, run, layer, tensor) of every GLoRA search's best.json."""
    rows = []
    for path, variant, task, run in Layout(str(results)).cells(exp, "search", "best.json"):
        best = json.loads(path.read_text())
        if best.get("method") != "glora":
            continue
        if RUN.fullmatch(run)["lr"]:  # a rate of train.supernet_lr_grid; the chosen one is the run itself
            continue
        for layer, choice in best["choices"].items():
            for tensor, option in choice.items():
                rows.append({"variant": variant, "size": best.get("size"), "task": task, "run": run,
                             "layer": layer, "tensor": tensor, "option": option})
    return pd.DataFrame(rows, columns=["variant", "size", "task", "run", "layer", "tensor", "option"])


def _layer_type(layer: str) -> str:
    return LAYER_TYPES.get(layer.rsplit(".", 1)[-1], layer.rsplit(".", 1)[-1])


def figure3(choices: pd.DataFrame, groups: Mapping[str, str], backbone: str, ranks: Mapping[str, list[int]],
            out: Path) -> list[Path]:
    """Figure 3: mean searched parameters per layer type in each VTAB group (the first variant searched)."""
    import matplotlib.pyplot as plt

    from glora.methods.glora.model import space_of

    sns = _style()
    variant = sorted(choices["variant"].unique())[0]
    part = choices[choices["variant"] == variant]
    space = space_of(backbone, ranks[variant])  # only the layer shapes are needed: no weights, no memory
    rows = []
    for (task, _run), cells in part.groupby(["task", "run"]):
        for layer, layer_cells in cells.groupby("layer"):
            choice = dict(zip(layer_cells["tensor"], layer_cells["option"]))
            rows.append({"task": task, "group": groups.get(task, "?"), "layer type": _layer_type(layer),
                         "params": space.layers[layer].params(choice)})
    df = pd.DataFrame(rows).groupby(["group", "task", "layer type"], as_index=False)["params"].sum()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    sns.barplot(data=df, x="group", y="params", hue="layer type", hue_order=list(LAYER_TYPES.values()), ax=ax,
                errorbar=None)
    ax.set(title=f"Searched GLoRA parameters per layer type ({variant})", xlabel="VTAB group",
           ylabel="parameters per task (mean)")
    ax.legend(title="layer type", bbox_to_anchor=(1.02, 1), loc="upper left")
    fig.tight_layout()
    return save(fig, out / "figure3_params_per_layer_type")


def _option_order(option: str) -> tuple[int, int]:
    """none, scalar, vector, then LoRA options by rank: from the cheapest to the most expressive."""
    fixed = {"none": 0, "scalar": 1, "vector": 2}
    return (fixed[option], 0) if option in fixed else (3, int(option.removeprefix("lora") or 0))


def figure4(choices: pd.DataFrame, out: Path) -> list[Path]:
    """Figure 4: per support tensor, how many tasks chose each option at each layer (the first variant)."""
    import matplotlib.pyplot as plt

    sns = _style()
    variant = sorted(choices["variant"].unique())[0]
    part = choices[choices["variant"] == variant]
    layers = list(dict.fromkeys(part["layer"]))
    tensors = list(dict.fromkeys(part["tensor"]))
    runs = part.groupby(["task", "run"]).ngroups
    annotate = len(layers) <= 16  # counts in the cells; at ViT-B/16 scale (48 layers) a colour bar instead
    fig, axes = plt.subplots(1, len(tensors), figsize=(3.0 * len(tensors) + (0 if annotate else 0.8),
                                                     0.16 * len(layers) + 2), sharey=True)
    for ax, tensor in zip(axes, tensors):
        counts = (part[part["tensor"] == tensor].groupby(["layer", "option"]).size().unstack(fill_value=0)
                  .reindex(layers, fill_value=0))
        counts = counts[sorted(counts.columns, key=_option_order)]
        last = tensor == tensors[-1]
        sns.heatmap(counts, ax=ax, cmap="Blues", vmin=0, vmax=runs, cbar=not annotate and last,
                    cbar_kws={"label": "tasks that chose it"}, annot=annotate, fmt="d", linewidths=0.3)
        ax.set(title=f"support tensor {tensor}", xlabel="option", ylabel="layer" if tensor == tensors[0] else "")
    fig.suptitle(f"Layer-wise configuration of the searched subnets ({variant}, counts over tasks)")
    fig.tight_layout()
    return save(fig, out / "figure4_layerwise_configuration")


def exported_features(config: Mapping, model_path: Path, task: str, limit: int) -> tuple:
    """Pre-logit features (n, dim) and labels (n,) of the first ``limit`` test images of ``task`` under the
    exported model ``model_path``."""
    import torch

    from glora.data.loading import Batches
    from glora.evaluate import load_exported, read_card
    from glora.experiment import open_split
    from glora.run import Run

    card = read_card(model_path)
    model = load_exported(model_path, card)
    data = open_split(config, Run(**card["run"]), "test")
    feats, labels = [], []
    with torch.inference_mode():
        for x, y in Batches(data, 128, shuffle=False, fixed_transform=True, device=torch.device("cpu"),
                            cache_gb=0, num_workers=0, quiet=True).epoch():
            feats.append(model.forward_head(model.forward_features(x), pre_logits=True))
            labels.append(y)
            if sum(len(f) for f in feats) >= limit:
                break
    return torch.cat(feats)[:limit].numpy(), torch.cat(labels)[:limit].numpy()


def figure5(config: Mapping, results: Path, task: str, variants: list[str], out: Path, limit: int = 1000
            ) -> list[Path]:
    """Figure 5: t-SNE of the test-set features of ``task`` under each variant's exported model (seed 0)."""
    import matplotlib.pyplot as plt
    from sklearn.manifold import TSNE

    sns = _style()
    fig, axes = plt.subplots(1, len(variants), figsize=(4.4 * len(variants), 4.2), squeeze=False)
    for ax, variant in zip(axes[0], variants):
        model = Layout(str(results)).cell("vtab", "export", variant, task, "seed0", "model.safetensors")
        feats, labels = exported_features(config, Path(model), task, limit)
        points = TSNE(n_components=2, init="pca", random_state=0, perplexity=min(30, len(feats) - 1)) \
            .fit_transform(feats)
        sns.scatterplot(x=points[:, 0], y=points[:, 1], hue=labels, palette="tab10", s=8, linewidth=0, ax=ax,
                        legend=False)
        method = variant if not variant.startswith("glora") else "glora"
        ax.set(title=display_name(variant, method), xticks=[], yticks=[])
    fig.suptitle(f"t-SNE of {task} test features")
    fig.tight_layout()
    return save(fig, out / "figure5_tsne")
