"""load_checkpoint / create_backbone(checkpoint=): Google .npz, .pth and .safetensors files, and their errors."""

import hashlib

import pytest
import safetensors.torch
import timm
import torch
from timm.models.vision_transformer import VisionTransformer

from glora.models import VIT_B16_IN21K_URL, CheckpointError, create_backbone, load_checkpoint
from tests.conftest import pretrained_like
from tests.npz_writer import save_vit_npz

HEAD = {"head.weight", "head.bias"}


def custom_vit(num_classes: int, seed: int) -> VisionTransformer:
    """A small ViT built like ViT-B (qkv bias, class token, no pre-logits) with 3 heads of 16."""
    torch.manual_seed(seed)
    model = VisionTransformer(img_size=24, patch_size=6, embed_dim=48, depth=2, num_heads=3, mlp_ratio=2.0,
                              qkv_bias=True, class_token=True, num_classes=num_classes)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)  # no zero biases or identity norms
    return model.eval()


def mini(num_classes: int, seed: int = 1, **kwargs) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_backbone("vit_mini", num_classes=num_classes, **kwargs).eval()


def state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_state_equal(model, expected, keys=None):
    got = model.state_dict()
    for k in keys if keys is not None else expected:
        assert torch.equal(got[k], expected[k]), k


# ---------------------------------------------------------------------------------------------------------------
# round trips

@pytest.mark.parametrize("make", [lambda n, seed: pretrained_like("vit_mini", n, seed), custom_vit],
                         ids=["vit_mini", "custom_vit"])
@pytest.mark.parametrize("same_head", [False, True], ids=["other_head", "same_head"])
def test_npz_round_trip(tmp_path, make, same_head):
    source = make(7, 0)
    path = save_vit_npz(source, tmp_path / "vit.npz")
    target = make(7 if same_head else 5, 1)
    fresh = state(target)
    assert not torch.equal(fresh["blocks.0.attn.qkv.weight"], source.state_dict()["blocks.0.attn.qkv.weight"])
    report = load_checkpoint(target, path)
    got, src = target.state_dict(), source.state_dict()
    body = [k for k in got if k not in HEAD]
    for k in body:
        assert torch.equal(got[k], src[k]), k
    if same_head:
        assert report["skipped_head"] == []
        assert_state_equal(target, src, HEAD)
        x = torch.randn(2, 3, *target.patch_embed.img_size)
        assert torch.equal(target(x), source(x))
    else:
        assert sorted(report["skipped_head"]) == sorted(HEAD)
        assert_state_equal(target, fresh, HEAD)  # the head keeps its fresh init
    assert report["format"] == "npz" and report["path"] == str(path)
    assert report["loaded"] == len(got) - len(report["skipped_head"])
    assert report["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_npz_round_trip_vit_b16_in21k(tmp_path):
    """The paper's ViT-B/16 architecture through a Google-layout .npz with a 21843-class head (random weights)."""
    name = "vit_base_patch16_224.orig_in21k"
    torch.manual_seed(0)
    source = create_backbone(name, num_classes=21843)
    path = save_vit_npz(source, tmp_path / "ViT-B_16.npz")
    assert path.stat().st_size > 300e6
    torch.manual_seed(1)
    target = create_backbone(name, num_classes=100, checkpoint=path)
    report = target.checkpoint_report
    assert sorted(report["skipped_head"]) == sorted(HEAD)
    assert report["loaded"] == len(target.state_dict()) - 2
    got, src = target.state_dict(), source.state_dict()
    for k in ("patch_embed.proj.weight", "pos_embed", "cls_token", "blocks.0.attn.qkv.weight",
              "blocks.5.attn.proj.weight", "blocks.11.mlp.fc2.weight", "blocks.11.norm2.bias", "norm.weight"):
        assert torch.equal(got[k], src[k]), k
    assert got["head.weight"].shape == (100, 768)


@pytest.mark.parametrize("wrap", ["plain", "state_dict", "model_module"])
def test_pth_round_trip_other_head(tmp_path, wrap):
    source = pretrained_like("vit_mini", 7, 0)
    sd = source.state_dict()
    payload = {"plain": sd, "state_dict": {"state_dict": sd, "epoch": 3},
               "model_module": {"model": {f"module.{k}": v for k, v in sd.items()}}}[wrap]
    path = tmp_path / "vit.pth"
    torch.save(payload, path)
    target = mini(5)
    fresh = state(target)
    report = load_checkpoint(target, path)
    assert report["format"] == "pth" and sorted(report["skipped_head"]) == sorted(HEAD)
    assert report["loaded"] == len(sd) - 2
    assert_state_equal(target, sd, [k for k in sd if k not in HEAD])
    assert_state_equal(target, fresh, HEAD)


def test_safetensors_round_trip_and_create_backbone(tmp_path):
    source = pretrained_like("vit_mini", 7, 0)
    sd = source.state_dict()
    path = tmp_path / "vit_mini.safetensors"
    safetensors.torch.save_file(sd, str(path))
    torch.manual_seed(3)
    fresh = state(create_backbone("vit_mini", num_classes=5))
    torch.manual_seed(3)
    target = create_backbone("vit_mini", num_classes=5, checkpoint=path)
    report = target.checkpoint_report
    sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    assert report == {"path": str(path), "format": "safetensors", "loaded": len(sd) - 2,
                      "skipped_head": ["head.weight", "head.bias"], "sha256": sha256}
    assert_state_equal(target, sd, [k for k in sd if k not in HEAD])
    assert_state_equal(target, fresh, HEAD)
    same = create_backbone("vit_mini", num_classes=7, checkpoint=path)
    assert same.checkpoint_report["skipped_head"] == []
    assert_state_equal(same, sd)
    assert create_backbone("vit_mini", num_classes=7).checkpoint_report is None


# ---------------------------------------------------------------------------------------------------------------
# errors: the model is left as it was

def test_missing_npz_names_path_and_url(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "ViT-B_16.npz"
    model = mini(5)
    with pytest.raises(ValueError) as err:
        load_checkpoint(model, path)
    assert isinstance(err.value, FileNotFoundError)
    msg = str(err.value)
    assert str(path) in msg and VIT_B16_IN21K_URL in msg and "paths.checkpoint" in msg
    monkeypatch.setattr(timm, "create_model", None)  # fails before building a ViT-B
    with pytest.raises(ValueError, match="ViT-B_16.npz"):
        create_backbone("vit_base_patch16_224.orig_in21k", num_classes=5, checkpoint=path)


def test_missing_mini_checkpoint_says_run_pretrain(tmp_path):
    path = tmp_path / "vit_mini.safetensors"
    with pytest.raises(FileNotFoundError) as err:
        load_checkpoint(mini(5), path)
    assert str(path) in str(err.value) and "python -m glora pretrain" in str(err.value)
    (tmp_path / "dir.pth").mkdir()
    with pytest.raises(ValueError, match="is a directory, not a checkpoint file"):
        load_checkpoint(mini(5), tmp_path / "dir.pth")


def test_unknown_suffix(tmp_path):
    path = tmp_path / "vit.ckpt"
    torch.save(mini(5).state_dict(), path)
    with pytest.raises(CheckpointError, match=r"unsupported suffix '\.ckpt'.*\.npz.*\.pth.*\.safetensors"):
        load_checkpoint(mini(5), path)


@pytest.mark.parametrize("suffix", [".npz", ".pth", ".safetensors"])
@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupt_file(tmp_path, suffix, damage):
    source = pretrained_like("vit_mini", 5, 0)
    path = tmp_path / f"vit{suffix}"
    if suffix == ".npz":
        save_vit_npz(source, path)
    elif suffix == ".pth":
        torch.save(source.state_dict(), path)
    else:
        safetensors.torch.save_file(source.state_dict(), str(path))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"this is not a checkpoint\n" * 40)
    model = mini(5)
    before = state(model)
    with pytest.raises(ValueError, match="cannot read") as err:
        load_checkpoint(model, path)
    assert str(path) in str(err.value)
    assert_state_equal(model, before)


def test_npz_member_damaged(tmp_path):
    """A zip whose directory is intact but one array's bytes are cut: a read error, not a partial load."""
    import zipfile

    good = save_vit_npz(pretrained_like("vit_mini", 5, 0), tmp_path / "good.npz")
    path = tmp_path / "bad.npz"
    victim = "Transformer/encoderblock_3/MlpBlock_3/Dense_1/kernel.npy"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info.filename, data[:200] if info.filename == victim else data)
    model = mini(5)
    before = state(model)
    with pytest.raises(ValueError, match="bad.npz"):
        load_checkpoint(model, path)
    assert_state_equal(model, before)


def test_state_dict_of_other_depth_lists_keys(tmp_path):
    path = tmp_path / "depth2.safetensors"
    safetensors.torch.save_file(mini(5, depth=2).state_dict(), str(path))
    model = mini(5)
    before = state(model)
    with pytest.raises(ValueError, match=r"does not fit vit_mini .*depth 4.*: 24 missing keys \[blocks\.2\.") as err:
        load_checkpoint(model, path, arch="vit_mini")
    assert "is it a checkpoint of this architecture?" in str(err.value)
    assert_state_equal(model, before)
    path4 = tmp_path / "depth4.pth"
    torch.save(mini(5).state_dict(), path4)
    with pytest.raises(ValueError, match=r"24 unexpected \[blocks\.2\."):
        load_checkpoint(mini(5, depth=2), path4)


def test_state_dict_of_other_width_lists_shapes(tmp_path):
    path = tmp_path / "wide.pth"
    torch.save(mini(5, embed_dim=64).state_dict(), path)
    with pytest.raises(ValueError, match=r"mismatched shapes \[cls_token \(1, 1, 64\) vs \(1, 1, 128\)"):
        load_checkpoint(mini(5), path)


def test_npz_of_other_depth(tmp_path):
    """Fewer blocks (timm: KeyError) and more blocks (timm: silently ignored) are both refused."""
    model = mini(5)
    before = state(model)
    shallow = save_vit_npz(mini(5, depth=2), tmp_path / "depth2.npz")
    with pytest.raises(ValueError, match="not a ViT checkpoint of this architecture.*2 transformer blocks"):
        load_checkpoint(model, shallow)
    assert_state_equal(model, before)
    deep = save_vit_npz(mini(5, depth=6), tmp_path / "depth6.npz")
    with pytest.raises(ValueError, match="6 transformer blocks, the model 4"):
        load_checkpoint(model, deep)
    assert_state_equal(model, before)


def test_npz_of_other_width_is_a_shape_error(tmp_path):
    """Like a ViT-L file into a ViT-B: refused before timm copies anything."""
    path = save_vit_npz(mini(5, embed_dim=64), tmp_path / "wide.npz")
    model = mini(5)
    before = state(model)
    with pytest.raises(ValueError, match=r"embedding/kernel shape \(8, 8, 3, 64\).*needs \(8, 8, 3, 128\)"):
        load_checkpoint(model, path)
    assert_state_equal(model, before)


def test_npz_of_other_mlp_width_is_a_shape_error(tmp_path):
    """Embeddings fit, an MLP kernel does not: timm's RuntimeError becomes a ValueError, nothing half-loaded."""
    path = save_vit_npz(mini(5, mlp_ratio=2.0), tmp_path / "narrow_mlp.npz")
    model = mini(5)
    before = state(model)
    with pytest.raises(ValueError, match=r"narrow_mlp.npz does not fit .*: .*size") as err:
        load_checkpoint(model, path)
    assert isinstance(err.value.__cause__, RuntimeError)
    assert_state_equal(model, before)


@pytest.mark.parametrize("kwargs", [{"img_size": 48}, {"img_size": 16}], ids=["grid6", "grid2"])
def test_npz_of_other_grid_is_refused_not_resampled(tmp_path, kwargs):
    path = save_vit_npz(mini(5), tmp_path / "grid4.npz")
    model = mini(5, **kwargs)
    before = state(model)
    with pytest.raises(ValueError, match=r"position embedding .*pos_embedding shape \(1, 17, 128\).*not resampling"):
        load_checkpoint(model, path)
    assert_state_equal(model, before)
    # timm's own loader would have resampled it without a word
    model.load_pretrained(str(path))
    assert model.pos_embed.shape != (1, 17, 128)


def test_npz_of_other_patch_size_is_refused(tmp_path):
    path = save_vit_npz(mini(5), tmp_path / "patch8.npz")
    with pytest.raises(ValueError, match=r"embedding/kernel shape \(8, 8, 3, 128\).*needs \(4, 4, 3, 128\)"):
        load_checkpoint(mini(5, patch_size=4), path)


def test_npz_missing_key(tmp_path):
    key = "Transformer/encoderblock_1/MlpBlock_3/Dense_0/bias"
    path = save_vit_npz(pretrained_like("vit_mini", 5, 0), tmp_path / "partial.npz", drop=(key,))
    model = mini(5)
    before = state(model)
    with pytest.raises(ValueError, match="not a ViT checkpoint of this architecture") as err:
        load_checkpoint(model, path)
    assert key in str(err.value) and "partial.npz" in str(err.value)
    assert_state_equal(model, before)  # no NaN, nothing half-loaded


def test_npz_without_embedding(tmp_path):
    path = save_vit_npz(mini(5), tmp_path / "noembed.npz", drop=("embedding/kernel",))
    with pytest.raises(ValueError, match="no embedding/kernel"):
        load_checkpoint(mini(5), path)


def test_npz_leaving_a_tensor_unset_is_refused(tmp_path):
    """timm's npz loader does not know LayerScale: ls1/ls2 would silently keep their init."""
    path = save_vit_npz(mini(5), tmp_path / "vit.npz")
    model = mini(5, init_values=0.1)
    before = state(model)
    with pytest.raises(ValueError, match=r"left 8 tensors unset .*blocks\.0\.ls1\.gamma"):
        load_checkpoint(model, path)
    assert_state_equal(model, before)


def test_npz_into_model_without_load_pretrained(tmp_path):
    path = save_vit_npz(mini(5), tmp_path / "vit.npz")
    swin = create_backbone("swin_mini", num_classes=5)
    assert not hasattr(swin, "load_pretrained")
    with pytest.raises(ValueError, match="no load_pretrained"):
        load_checkpoint(swin, path)


def test_swin_state_dict_round_trip_other_head(tmp_path):
    """The head of a non-ViT comes from get_classifier() too (Swin: head.fc)."""
    torch.manual_seed(0)
    source = create_backbone("swin_mini", num_classes=7)
    path = tmp_path / "swin.safetensors"
    safetensors.torch.save_file(source.state_dict(), str(path))
    target = create_backbone("swin_mini", num_classes=5, checkpoint=path)
    assert target.checkpoint_report["skipped_head"] == ["head.fc.weight", "head.fc.bias"]
    src = source.state_dict()
    assert_state_equal(target, src, [k for k in src if not k.startswith("head.")])
    assert timm.models.load_state_dict(str(path)).keys() == src.keys()


def test_swin_release_layout_loads_without_resampling(tmp_path):
    """Microsoft's Swin release (swin_base_patch4_window7_224_22k.pth) keeps each stage's patch merging at the
    end of the stage, names the head `head`, and saves relative_position_index / attn_mask buffers."""
    import re

    torch.manual_seed(0)
    source = create_backbone("swin_mini", num_classes=21841)
    src = source.state_dict()
    release = {}
    for key, value in src.items():
        key = re.sub(r"^layers\.(\d+)\.downsample", lambda m: f"layers.{int(m.group(1)) - 1}.downsample", key)
        release[key.replace("head.fc.", "head.")] = value
        if key.endswith("relative_position_bias_table"):
            release[key.replace("bias_table", "index")] = torch.zeros(16, 16, dtype=torch.long)
    release["layers.0.blocks.1.attn_mask"] = torch.zeros(4, 16, 16)
    assert "layers.0.downsample.reduction.weight" in release and "head.weight" in release
    path = tmp_path / "swin_base_patch4_window7_224_22k.pth"
    torch.save({"model": release}, path)
    target = create_backbone("swin_mini", num_classes=5, checkpoint=path)
    assert target.checkpoint_report["skipped_head"] == ["head.fc.weight", "head.fc.bias"]
    assert_state_equal(target, src, [k for k in src if not k.startswith("head.")])
    same_head = create_backbone("swin_mini", num_classes=21841, checkpoint=path)
    assert same_head.checkpoint_report["skipped_head"] == []
    assert_state_equal(same_head, src)
