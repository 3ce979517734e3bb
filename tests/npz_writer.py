"""Write a timm VisionTransformer in Google's original ViT ``.npz`` layout (the inverse of timm's ``_load_weights``).

The layout of ``ViT-B_16.npz``: flax kernels are (in, out), the patch embedding is HWIO, the attention's
query/key/value kernels are (D, heads, head_dim) with (heads, head_dim) biases, the output kernel is
(heads, head_dim, D).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import nn


def vit_npz_arrays(model: nn.Module) -> dict[str, np.ndarray]:
    """Google-layout arrays for a plain timm ViT (class token, qkv bias, final norm, linear head)."""
    sd = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    used = set()

    def take(key):
        used.add(key)
        return sd[key]

    out = {
        "embedding/kernel": take("patch_embed.proj.weight").transpose(2, 3, 1, 0),  # OIHW -> HWIO
        "embedding/bias": take("patch_embed.proj.bias"),
        "cls": take("cls_token"),
        "Transformer/posembed_input/pos_embedding": take("pos_embed"),
        "Transformer/encoder_norm/scale": take("norm.weight"),
        "Transformer/encoder_norm/bias": take("norm.bias"),
    }
    if "head.weight" in sd:
        out["head/kernel"] = take("head.weight").T
        out["head/bias"] = take("head.bias")
    for i, block in enumerate(model.blocks):
        src, dst = f"blocks.{i}.", f"Transformer/encoderblock_{i}/"
        heads, head_dim = block.attn.num_heads, block.attn.head_dim
        width = heads * head_dim
        out[dst + "LayerNorm_0/scale"] = take(src + "norm1.weight")
        out[dst + "LayerNorm_0/bias"] = take(src + "norm1.bias")
        qkv_w, qkv_b = take(src + "attn.qkv.weight"), take(src + "attn.qkv.bias")
        dim = qkv_w.shape[1]
        for j, part in enumerate(("query", "key", "value")):
            rows = slice(j * width, (j + 1) * width)
            out[dst + f"MultiHeadDotProductAttention_1/{part}/kernel"] = qkv_w[rows].T.reshape(dim, heads, head_dim)
            out[dst + f"MultiHeadDotProductAttention_1/{part}/bias"] = qkv_b[rows].reshape(heads, head_dim)
        proj_w = take(src + "attn.proj.weight")
        out[dst + "MultiHeadDotProductAttention_1/out/kernel"] = proj_w.reshape(-1, heads, head_dim).transpose(1, 2, 0)
        out[dst + "MultiHeadDotProductAttention_1/out/bias"] = take(src + "attn.proj.bias")
        out[dst + "LayerNorm_2/scale"] = take(src + "norm2.weight")
        out[dst + "LayerNorm_2/bias"] = take(src + "norm2.bias")
        for r in range(2):
            out[dst + f"MlpBlock_3/Dense_{r}/kernel"] = take(src + f"mlp.fc{r + 1}.weight").T
            out[dst + f"MlpBlock_3/Dense_{r}/bias"] = take(src + f"mlp.fc{r + 1}.bias")
    left = sorted(set(sd) - used)
    if left:
        raise ValueError(f"not a plain ViT: no Google .npz name for {left}")
    return {k: np.ascontiguousarray(v) for k, v in out.items()}


def save_vit_npz(model: nn.Module, path: str | Path, drop: tuple[str, ...] = ()) -> Path:
    """Save ``model`` as an uncompressed Google ``.npz`` (like ``ViT-B_16.npz``), leaving out the keys ``drop``."""
    arrays = vit_npz_arrays(model)
    for key in drop:
        del arrays[key]
    path = Path(path)
    np.savez(path, **arrays)
    return path
