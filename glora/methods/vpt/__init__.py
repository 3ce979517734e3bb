"""Visual Prompt Tuning (Jia et al., 2022): prompt tokens in a timm ViT's token sequence, before the first block
(VPT-Shallow) or at every block (VPT-Deep). The layer: :mod:`.layer`."""

from __future__ import annotations

from dataclasses import dataclass

from glora.methods.record import VIT, Method, option


@dataclass(frozen=True)
class VptOptions:
    """Prompt lengths are per task (``methods.vpt_*.per_task``, config.yaml)."""

    length: int = option(10, "prompt tokens per prompted block")
    dropout: float = option(0.0, "dropout on the prompts while training")


VPT_SHALLOW = Method(name="vpt_shallow", display="VPT-Shallow",
                     description="VPT-Shallow: prompt tokens before the first block", options=VptOptions,
                     apply_fn="glora.methods.vpt.layer:apply_vpt_shallow", backbones=(VIT,))
VPT_DEEP = Method(
    name="vpt_deep", display="VPT-Deep", description="VPT-Deep: new prompt tokens at every block", options=VptOptions,
    apply_fn="glora.methods.vpt.layer:apply_vpt_deep", backbones=(VIT,),
    param_note="VPT publishes its per-task VPT-Deep prompt lengths only in a spreadsheet (vtab_all_release.csv) "
               "we cannot reach; the per-task lengths we use give 0.68M on average, Table 1 prints 0.53M")
