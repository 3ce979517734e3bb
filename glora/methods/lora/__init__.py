"""LoRA (Hu et al., 2022) on the fused qkv projection, as the VTAB baselines use it (NOAH's protocol); on a
Hugging Face causal LM, on the linears ``target_modules`` names (Table 2). The layer: :mod:`.layer`."""

from __future__ import annotations

from dataclasses import dataclass

from glora.methods.record import Method, option


@dataclass(frozen=True)
class LoraOptions:
    """NOAH experiments/LoRA/ViT-B_prompt_lora_8.yaml: rank 8 on the fused qkv, no alpha/r."""

    rank: int = option(8, "rank r of the update B A")
    alpha: float | None = option(None, "scale alpha / r of the update (None: alpha = r, no scaling)")
    dropout: float = option(0.0, "dropout on the update's input while training")
    targets: str = option(r".*\.qkv", "regex over a timm ViT/Swin's block linears (default: the fused qkv)")
    target_modules: str | list[str] | None = option(
        None, "any model's linears instead: a regex, or full or leaf names such as [q_proj, v_proj]")


LORA = Method(name="lora", display="LoRA", description="LoRA: a low-rank update of every fused qkv",
              options=LoraOptions, apply_fn="glora.methods.lora.layer:apply_lora",
              merge_fn="glora.methods.lora.layer:merge_lora")
