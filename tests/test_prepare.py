"""`python -m glora prepare`: downloads from a real HTTP server on 127.0.0.1 (resumed, verified, refused), safe
unpacking, and every family from fixture archives with the real layouts through to `data check`."""

import hashlib
import io
import json
import random
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import yaml
from safetensors.torch import save_file

from glora.cli import main
from glora.config import load_config
from glora.data import check_dataset
from glora.data.prepare import prepare
from glora.data.prepare.fetch import fetch
from glora.data.prepare.sources import Artefact, PrepareError, Registry, Sources
from glora.data.prepare.stage import staged
from glora.data.prepare.unpack import UnsafeArchive, unpack
from glora.models import create_backbone
from tests.http_server import FileServer
from tests.prepare_fixtures import ROOT, build_mirror, small_tables, sources_for, write_archive, write_yaml

BLOB = random.Random(0).randbytes(1 << 20)
BLOB_SHA = hashlib.sha256(BLOB).hexdigest()


def settings(timeout_s=2.0, retries=1) -> Sources:
    return Sources(path=Path("config/sources.yaml"), data={}, timeout_s=timeout_s, retries=retries)


def blob(urls, sha256=BLOB_SHA, manual="") -> Artefact:
    return Artefact(id="test/blob.bin", key="test.blob", file="blob.bin", urls=tuple(urls), sha256=sha256,
                    size=None, manual=manual)


@pytest.fixture
def served(tmp_path):
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "blob.bin").write_bytes(BLOB)
    with FileServer(tmp_path / "www") as server:
        yield server


# ---------------------------------------------------------------------------------------------------------------
# fetching

def test_a_download_cut_half_way_resumes_with_a_range_request(served, tmp_path):
    served.faults["blob.bin"] = "cut"
    downloads = tmp_path / "dl"
    record = fetch(blob([served.url("blob.bin")]), downloads / "blob.bin", Registry(downloads), settings())
    assert (downloads / "blob.bin").read_bytes() == BLOB
    log = served.requests_for("blob.bin")
    half = len(BLOB) // 2
    assert [(r["range"], r["status"], r["sent"]) for r in log] == [(None, 200, half),
                                                                   (f"bytes={half}-", 206, len(BLOB) - half)]
    assert record["status"] == "downloaded" and record["sha256"] == BLOB_SHA and record["checksum"] == "pinned"
    assert sorted(p.name for p in downloads.iterdir()) == [".registry.lock", "blob.bin", "registry.json"]
    assert json.loads((downloads / "registry.json").read_text())["test/blob.bin"]["url"] == served.url("blob.bin")


def test_a_killed_download_resumes_where_it_stopped(served, tmp_path):
    served.faults["blob.bin"] = "trickle"  # about 200 kB/s: the job is killed after 100 kB or more
    downloads = tmp_path / "dl"
    code = ("import sys; from pathlib import Path; from glora.data.prepare.fetch import fetch; "
            "from glora.data.prepare.sources import Artefact, Registry, Sources; "
            f"fetch(Artefact('test/blob.bin', 'test.blob', 'blob.bin', ({served.url('blob.bin')!r},), {BLOB_SHA!r}), "
            f"Path({str(downloads / 'blob.bin')!r}), Registry({str(downloads)!r}), "
            "Sources(Path('s.yaml'), {}, 5.0, 0), quiet=True)")
    job = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    partial = downloads / "blob.bin.part"
    deadline = time.monotonic() + 60
    while not (partial.is_file() and partial.stat().st_size >= 100_000):
        assert job.poll() is None and time.monotonic() < deadline, "the download ended before it was killed"
        time.sleep(0.05)
    job.send_signal(signal.SIGKILL)
    job.wait()
    kept = partial.stat().st_size
    assert 100_000 <= kept < len(BLOB) and not (downloads / "blob.bin").exists()
    del served.faults["blob.bin"]
    fetch(blob([served.url("blob.bin")]), downloads / "blob.bin", Registry(downloads), settings())
    assert (downloads / "blob.bin").read_bytes() == BLOB and not partial.exists()
    last = served.requests_for("blob.bin")[-1]
    assert (last["range"], last["status"], last["sent"]) == (f"bytes={kept}-", 206, len(BLOB) - kept)


def test_a_checksum_mismatch_names_the_url_and_leaves_no_file(served, tmp_path):
    downloads = tmp_path / "dl"
    wrong = "0" * 64
    with pytest.raises(PrepareError) as err:
        fetch(blob([served.url("blob.bin")], sha256=wrong), downloads / "blob.bin", Registry(downloads), settings())
    message = str(err.value)
    assert (f"{served.url('blob.bin')}: sha256 {BLOB_SHA} is not the one pinned in config/sources.yaml "
            f"(test.blob.sha256) ({wrong}); the file was deleted") in message
    assert "Add a mirror of the same file to test.blob.urls in config/sources.yaml" in message
    assert [p.name for p in downloads.iterdir()] == []  # no bad file, no partial, no temporary file


def test_a_404_and_a_silent_server_fail_in_bounded_time_naming_each_url(served, tmp_path):
    served.faults["hang.bin"] = "hang"
    urls = [served.url("gone.bin"), served.url("hang.bin")]
    started = time.monotonic()
    with pytest.raises(PrepareError) as err:
        fetch(blob(urls, manual="ask your institute for a copy"), tmp_path / "dl" / "blob.bin",
              Registry(tmp_path / "dl"), settings(timeout_s=1, retries=1))
    elapsed = time.monotonic() - started
    message = str(err.value)
    assert message.splitlines()[1:3] == [f"  {urls[0]}: HTTP 404 Not Found",
                                         f"  {urls[1]}: no answer within 1 s (1 retries)"]
    assert message.endswith("or by hand: ask your institute for a copy.")
    assert elapsed < 10, elapsed  # two 1 s timeouts and a 1 s back-off
    assert list((tmp_path / "dl").iterdir()) == []  # nothing was received: nothing is left
    assert len(served.requests_for("gone.bin")) == 1 and len(served.requests_for("hang.bin")) == 2  # 404: no retry


def test_file_urls_and_local_paths_are_mirrors(served, tmp_path):
    copy = tmp_path / "institute copy" / "blob.bin"
    copy.parent.mkdir()
    copy.write_bytes(BLOB)
    downloads = tmp_path / "dl"
    record = fetch(blob([served.url("gone.bin"), copy.as_uri()]), downloads / "blob.bin", Registry(downloads),
                   settings())
    assert record["url"] == copy.as_uri() and (downloads / "blob.bin").read_bytes() == BLOB
    (downloads / "blob.bin").unlink()
    record = fetch(blob([str(copy)]), downloads / "blob.bin", Registry(downloads), settings())
    assert record["url"] == str(copy) and record["status"] == "downloaded"
    assert fetch(blob([str(copy)]), downloads / "blob.bin", Registry(downloads), settings())["status"] == "present"


def test_an_unpinned_checksum_is_recorded_and_then_required(served, tmp_path):
    downloads = tmp_path / "dl"
    record = fetch(blob([served.url("blob.bin")], sha256=None), downloads / "blob.bin", Registry(downloads),
                   settings())
    assert (record["checksum"], record["sha256"]) == ("recorded", BLOB_SHA)
    (downloads / "blob.bin").unlink()
    (tmp_path / "www" / "blob.bin").write_bytes(BLOB[::-1])  # the mirror now serves other bytes
    with pytest.raises(PrepareError, match=f"is not the one recorded on the first download in "
                                           f"{downloads / 'registry.json'} \\({BLOB_SHA}\\)"):
        fetch(blob([served.url("blob.bin")], sha256=None), downloads / "blob.bin", Registry(downloads), settings())


# ---------------------------------------------------------------------------------------------------------------
# unpacking

def _tar_with(path, name, kind=tarfile.REGTYPE, linkname=""):
    with tarfile.open(path, "w:gz" if path.suffix == ".gz" else "w") as tar:
        good = tarfile.TarInfo("release/ok.txt")
        good.size = 2
        tar.addfile(good, io.BytesIO(b"ok"))
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, linkname
        tar.addfile(info, io.BytesIO(b"") if kind == tarfile.REGTYPE else None)
    return path


@pytest.mark.parametrize("make, member", [
    (lambda p: write_archive(p / "a.zip", {"release/ok.txt": b"ok", "../escape.txt": b"x"}), "../escape.txt"),
    (lambda p: _tar_with(p / "a.tar", "/tmp/escape.txt"), "/tmp/escape.txt"),
    (lambda p: _tar_with(p / "a.tar.gz", "release/../../escape.txt"), "release/../../escape.txt"),
    (lambda p: _tar_with(p / "a.tar", "release/link", tarfile.SYMTYPE, "../../escape.txt"), "release/link"),
    (lambda p: _tar_with(p / "a.tar", "release/abs", tarfile.SYMTYPE, "/etc/passwd"), "release/abs"),
], ids=["zip-dotdot", "tar-absolute", "tgz-dotdot", "tar-symlink-out", "tar-symlink-absolute"])
def test_an_archive_with_a_member_outside_the_folder_is_refused(tmp_path, make, member):
    archive = make(tmp_path)
    target = tmp_path / "deep" / "data" / "task"
    with pytest.raises(UnsafeArchive) as err, staged(target) as stage:
        unpack(archive, stage)
    assert f"member {member!r}" in str(err.value) and "the archive is refused" in str(err.value)
    assert not target.exists() and list((tmp_path / "deep" / "data").iterdir()) == []  # staging removed
    assert not list(tmp_path.rglob("escape.txt"))


def test_unpack_maps_member_prefixes_and_keeps_inner_links(tmp_path):
    archive = tmp_path / "a.tar"
    with tarfile.open(archive, "w") as tar:
        for name, data in (("top/images/a/1.jpg", b"1"), ("top/meta/x.txt", b"m")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("top/images/a/2.jpg")
        link.type, link.linkname = tarfile.SYMTYPE, "1.jpg"
        tar.addfile(link)
    assert unpack(archive, tmp_path / "out", {"top/images/": ""}) == 1
    assert sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*")) == [
        "a", "a/1.jpg", "a/2.jpg"]
    assert (tmp_path / "out" / "a" / "2.jpg").read_bytes() == b"1"


# ---------------------------------------------------------------------------------------------------------------
# the families, from a mirror of fixture archives

@pytest.fixture
def mirror(tmp_path_factory, monkeypatch):
    small_tables(monkeypatch)
    folder = tmp_path_factory.mktemp("mirror")
    facts = build_mirror(folder)
    with FileServer(folder) as server:
        yield server, folder, facts


def paper_config(tmp_path, sources: dict, **paths) -> dict:
    config = load_config([ROOT / "config.yaml"])
    data = tmp_path / "data"
    config["paths"].update(vtab=str(data / "vtab-1k"), fewshot=str(data / "few-shot"),
                           imagenet=str(data / "imagenet"), downloads=str(data / "downloads"),
                           sources=str(write_yaml(tmp_path / "sources.yaml", sources)), **paths)
    return config


def test_vtab_prepare_then_check_then_nothing_to_do(mirror, tmp_path):
    server, _, facts = mirror
    config = paper_config(tmp_path, sources_for(server.url(), facts))
    root = Path(config["paths"]["vtab"])
    stale = root / ".kitti.staging" / "kitti" / "images"  # what a job killed while unpacking leaves
    stale.mkdir(parents=True)
    report = prepare(config, "vtab", quiet=True)
    assert len(report["prepared"]) == 19 and report["kept"] == []
    assert sorted(p.name for p in root.iterdir()) == sorted(report["prepared"])  # the stale staging is gone
    (record,) = report["artefacts"]
    assert (record["checksum"], record["sha256"]) == ("recorded", facts["archives"]["vtab/vtab-1k.zip"]["sha256"])
    manifest = check_dataset("vtab", config["paths"]["vtab"])  # the next stage, decoding every image
    assert len(manifest["tasks"]) == 19 and manifest["images"] == 19 * 15
    assert {s: v["images"] for s, v in manifest["tasks"]["sun397"]["splits"].items()} == {
        "train800": 4, "val200": 2, "train800val200": 6, "test": 3}
    downloads = Path(config["paths"]["downloads"])
    assert not (downloads / "vtab-1k.zip").exists()  # unpacked and verified: the archive is not kept
    registry = json.loads((downloads / "registry.json").read_text())
    assert registry["vtab/vtab-1k.zip"]["sha256"] == record["sha256"]
    requests = len(server.log)
    again = prepare(config, "vtab", quiet=True)
    assert (len(again["kept"]), again["prepared"], len(server.log)) == (19, [], requests)  # no download
    (root / "kitti" / "images" / "test" / "000001.jpg").unlink()  # an incomplete task is prepared again
    again = prepare(config, "vtab", quiet=True)
    assert (len(again["kept"]), again["prepared"], len(server.log)) == (18, ["kitti"], requests + 1)
    assert check_dataset("vtab", root, tasks=["kitti"])["images"] == 15


def test_a_vtab_archive_missing_tasks_is_refused_naming_them(mirror, tmp_path):
    server, _, facts = mirror
    sources = sources_for(server.url(), facts)
    sources["vtab"]["archive"]["urls"] = [server.url("vtab12/vtab-1k.zip")]
    config = paper_config(tmp_path, sources)
    with pytest.raises(PrepareError) as err:
        prepare(config, "vtab", quiet=True)
    message = str(err.value)
    assert (f"{server.url('vtab12/vtab-1k.zip')}: vtab-1k.zip holds 12 of the 19 VTAB-1K tasks asked for; missing: "
            "clevr_dist, dmlab, kitti, dsprites_loc, dsprites_ori, smallnorb_azi, smallnorb_ele; "
            "the file was deleted") in message
    assert "Add a mirror of the same file to vtab.archive.urls in " in message
    assert not Path(config["paths"]["vtab"]).exists()
    assert not (Path(config["paths"]["downloads"]) / "vtab-1k.zip").exists()


def test_fewshot_prepare_public_sets_then_the_imagenet_source(mirror, tmp_path):
    server, folder, facts = mirror
    config = paper_config(tmp_path, sources_for(server.url(), facts), imagenet_1k=str(tmp_path / "no-imagenet"))
    with pytest.raises(PrepareError) as err:
        prepare(config, "fewshot", quiet=True)
    message = str(err.value)
    assert message.startswith("1 of 6 few-shot datasets could not be prepared")
    assert f"imagenet: the images come from a local ImageNet-1k, and {tmp_path / 'no-imagenet'}/train/" in message
    assert "https://image-net.org/download-images" in message
    root = Path(config["paths"]["fewshot"])
    assert sorted(p.name for p in root.iterdir()) == ["fgvc-aircraft", "food101", "oxford-flowers102",
                                                      "oxford-pets", "standford-cars"]
    archives = len([e for e in server.log if not e["path"].startswith("noah/")])
    config["paths"]["imagenet_1k"] = str(folder / "imagenet-1k")
    report = prepare(config, "fewshot", quiet=True)
    assert report["prepared"] == ["imagenet"] and len(report["kept"]) == 5
    assert len([e for e in server.log if not e["path"].startswith("noah/")]) == archives  # nothing re-downloaded
    manifest = check_dataset("fewshot", root)  # decodes every image, through the links into ImageNet-1k
    assert sorted(manifest["tasks"]) == ["fgvc-aircraft", "food101", "imagenet", "oxford-flowers102",
                                         "oxford-pets", "standford-cars"]
    assert manifest["tasks"]["standford-cars"]["splits"]["train_shot2_seed0"]["images"] == 4
    ann = root / "imagenet" / "annotations"
    assert (ann / "test_meta.list").read_bytes() == (folder / "noah/imagenet/annotations/val_meta.list").read_bytes()
    test_image = root / "imagenet" / "ILSVRC2012_val_00000001.JPEG"
    source = folder / "imagenet-1k/val" / test_image.name  # a hard link: inside the data root, no copy
    assert not test_image.is_symlink() and test_image.stat().st_ino == source.stat().st_ino
    assert not (root / "fgvc-aircraft" / "README.txt").exists()  # only the mapped members are unpacked


def test_imagenet_variants_prepare_then_check(mirror, tmp_path):
    server, _, facts = mirror
    config = paper_config(tmp_path, sources_for(server.url(), facts))
    report = prepare(config, "imagenet", quiet=True)
    assert report["prepared"] == ["imagenet_v2", "imagenet_sketch", "imagenet_a", "imagenet_r"]
    assert all(r["checksum"] == "pinned" for r in report["artefacts"])
    manifest = check_dataset("imagenet", config["paths"]["imagenet"])
    assert {v: t["splits"]["test"]["images"] for v, t in manifest["tasks"].items()} == {
        "imagenet_v2": 1000, "imagenet_sketch": 1000, "imagenet_a": 200, "imagenet_r": 200}
    assert manifest["tasks"]["imagenet_a"]["num_classes"] == 1000  # labels: timm's ImageNet-1k order
    requests = len(server.log)
    assert prepare(config, "imagenet", quiet=True)["prepared"] == [] and len(server.log) == requests


def test_a_checkpoint_that_does_not_load_is_deleted_and_the_next_mirror_used(tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    save_file(create_backbone("swin_mini", num_classes=3).state_dict(), www / "wrong.safetensors")
    good = create_backbone("vit_mini", num_classes=3).state_dict()
    save_file(good, www / "vit_mini.safetensors")
    with FileServer(www) as server:
        sources = yaml.safe_load((ROOT / "config" / "sources.yaml").read_text())
        sources["checkpoints"]["vit_mini"] = {"urls": [server.url("wrong.safetensors"),
                                                       server.url("vit_mini.safetensors")], "licence": "test"}
        target = tmp_path / "checkpoints" / "vit_mini.safetensors"
        config = paper_config(tmp_path, sources, checkpoint=str(target))
        config["backbone"] = "vit_mini"
        config["experiments"]["swin"]["enabled"] = False
        report = prepare(config, "checkpoint", backbone="vit_mini", quiet=True)
        assert report["loaded"]["loaded"] == len(good) - 2 and report["loaded"]["format"] == "safetensors"
        (record,) = report["artefacts"]
        assert record["url"] == server.url("vit_mini.safetensors") and record["checksum"] == "recorded"
        assert record["sha256"] == hashlib.sha256(target.read_bytes()).hexdigest()
        assert [e["path"] for e in server.log] == ["wrong.safetensors", "vit_mini.safetensors"]
        again = prepare(config, "checkpoint", backbone="vit_mini", quiet=True)
        assert again["artefacts"][0]["status"] == "present" and len(server.log) == 2


def test_llama_check_names_every_missing_file(tmp_path, capsys):
    good = tmp_path / "llama-2-7b-hf"
    good.mkdir()
    (good / "config.json").write_text('{"model_type": "llama"}')
    (good / "tokenizer.model").write_bytes(b"x")
    (good / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
        "a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    (good / "model-00001-of-00002.safetensors").write_bytes(b"x")
    config = paper_config(tmp_path, yaml.safe_load((ROOT / "config" / "sources.yaml").read_text()))
    config["experiments"]["llm"]["models"] = {"llama2_7b": str(good), "llama1_7b": str(tmp_path / "llama-7b-hf")}
    with pytest.raises(PrepareError) as err:
        prepare(config, "llama")
    assert str(err.value).splitlines()[:3] == [
        "2 problem(s) with the LLaMA folders (experiments.llm.models):",
        f"  {good / 'model-00002-of-00002.safetensors'}: not found (listed in model.safetensors.index.json)",
        f"  {tmp_path / 'llama-7b-hf'}: folder not found"]
    assert "huggingface.co/meta-llama/Llama-2-7b-hf" in str(err.value)
    (good / "model-00002-of-00002.safetensors").write_bytes(b"x")
    del config["experiments"]["llm"]["models"]["llama1_7b"]
    assert prepare(config, "llama")["models"] == {"llama2_7b": str(good)}


def test_cli_prepare_errors_are_one_clear_message_with_exit_2(tmp_path, capsys):
    bad = tmp_path / "sources.yaml"
    sources = yaml.safe_load((ROOT / "config" / "sources.yaml").read_text())
    sources["vtab"]["archive"]["mirrors"] = sources["vtab"]["archive"].pop("urls")
    write_yaml(bad, sources)
    assert main(["prepare", "vtab", "--config", str(ROOT / "config.yaml"), "--set", f"paths.sources={bad}",
                 "--set", f"paths.vtab={tmp_path / 'vtab'}", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: sources file {bad} is invalid (2 problem(s)):\n")
    assert "  vtab.archive: 'urls' is a required property" in err
    assert "Additional properties are not allowed ('mirrors' was unexpected)" in err


def test_cli_prepare_all_continues_past_a_target_that_fails_and_names_it(mirror, tmp_path, capsys):
    server, folder, facts = mirror
    sources = sources_for(server.url(), facts)
    ckpt = tmp_path / "www" / "vit_mini.safetensors"
    ckpt.parent.mkdir()
    save_file(create_backbone("vit_mini", num_classes=3).state_dict(), ckpt)
    sources["checkpoints"]["vit_mini"] = {"urls": [str(ckpt)], "licence": "test"}
    config = paper_config(tmp_path, sources, checkpoint=str(tmp_path / "checkpoints" / "vit_mini.safetensors"),
                          imagenet_1k=str(tmp_path / "no-imagenet"))
    config.update(backbone="vit_mini")
    config["experiments"]["swin"]["enabled"] = False
    config_file = write_yaml(tmp_path / "run.yaml", config)
    out = tmp_path / "prepared.json"
    argv = ["prepare", "all", "--config", str(config_file), "--out", str(out), "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err  # the log lines, then the error
    assert err[err.index("\nerror: ") + 1:].startswith(
        "error: 1 of 4 targets could not be prepared (the others are done):\n[fewshot] 1 of 6 few-shot datasets "
        "could not be prepared")
    assert not out.exists() and len(list(Path(config["paths"]["vtab"]).iterdir())) == 19
    config["paths"]["imagenet_1k"] = str(folder / "imagenet-1k")
    write_yaml(config_file, config)
    assert main(argv) == 0
    report = json.loads(out.read_text())
    assert sorted(report) == ["checkpoint_vit_mini", "fewshot", "imagenet", "vtab"]
    assert report["fewshot"]["prepared"] == ["imagenet"] and len(report["vtab"]["kept"]) == 19
