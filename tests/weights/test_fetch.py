"""Fetching registry entries from a real HTTP server on 127.0.0.1: download, resume, checks, atomicity."""

import hashlib
import json

import pytest

from tests.weights.conftest import payload, sha256
from v2a.weights import ChecksumError, WeightsOfflineError, entry_path, fetch_entry, get_entry, status, verify_entry

SIZE = 3 * (1 << 20) + 12345  # a few blocks, not a multiple of one


def _url_entry(server, data: bytes, **checks):
    server.files["/rel/model.pth"] = data
    return {"description": "test", "source": {"url": f"{server.url}/rel/model.pth?download=1"},
            "file": "model.pth", "fills": ["extractors.panns.checkpoint"], "licence": "test", **checks}


def test_a_file_is_downloaded_checked_and_recorded(server, cache, registry_of):
    data = payload(SIZE)
    registry_of({"m": _url_entry(server, data, sha256=sha256(data), size=SIZE)})
    st = fetch_entry(get_entry("m"), progress=False)
    assert st.state == "present" and st.size == SIZE
    assert entry_path(get_entry("m")).read_bytes() == data
    manifest = json.loads((cache / "m" / ".v2a-weights.json").read_text())
    assert manifest["files"]["model.pth"]["sha256"] == sha256(data)
    assert manifest["files"]["model.pth"]["checked"] == "registry"
    assert not list(cache.rglob("*.part"))
    # fetched again: nothing is downloaded
    n = len(server.log)
    fetch_entry(get_entry("m"), progress=False)
    assert len(server.log) == n


def test_a_transfer_cut_halfway_resumes_with_a_range_request(server, cache, registry_of):
    data = payload(SIZE, seed=1)
    registry_of({"m": _url_entry(server, data, sha256=sha256(data))})
    server.cut_once.add("/rel/model.pth")
    st = fetch_entry(get_entry("m"), progress=False, backoff_s=0)
    assert st.state == "present"
    assert entry_path(get_entry("m")).read_bytes() == data
    first, second = server.requests_for("/rel/model.pth")
    assert first["range"] is None and 0 < first["sent"] < SIZE
    kept = int(second["range"].split("=")[1].rstrip("-"))
    assert 0 < kept <= first["sent"]
    assert second["sent"] == SIZE - kept  # only the rest travelled


def test_a_part_file_left_by_an_earlier_run_is_resumed(server, cache, registry_of):
    data = payload(SIZE, seed=2)
    registry_of({"m": _url_entry(server, data, sha256=sha256(data))})
    part = cache / "m" / "model.pth.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(data[:1_000_000])
    assert status(get_entry("m")).state == "partial"
    fetch_entry(get_entry("m"), progress=False)
    (req,) = server.requests_for("/rel/model.pth")
    assert req["range"] == "bytes=1000000-" and req["sent"] == SIZE - 1_000_000
    assert entry_path(get_entry("m")).read_bytes() == data


def test_a_server_that_ignores_range_is_read_from_the_start(server, cache, registry_of):
    data = payload(SIZE, seed=3)
    registry_of({"m": _url_entry(server, data, sha256=sha256(data))})
    (cache / "m").mkdir(parents=True)
    (cache / "m" / "model.pth.part").write_bytes(data[:500_000])
    server.ignore_range = True
    fetch_entry(get_entry("m"), progress=False)
    assert entry_path(get_entry("m")).read_bytes() == data


def test_a_checksum_mismatch_is_refused_and_the_bad_file_removed(server, cache, registry_of):
    data = payload(SIZE, seed=4)
    registry_of({"m": _url_entry(server, data, sha256="0" * 64)})
    with pytest.raises(ChecksumError, match="refused and deleted"):
        fetch_entry(get_entry("m"), progress=False)
    assert not entry_path(get_entry("m")).exists()
    assert not list(cache.rglob("*.part"))
    assert status(get_entry("m")).state == "missing"


def test_a_torch_hub_style_hash_prefix_is_checked(server, cache, registry_of):
    data = payload(1000, seed=5)
    registry_of({"ok": _url_entry(server, data, sha256_prefix=sha256(data)[:8])})
    assert fetch_entry(get_entry("ok"), progress=False).state == "present"
    registry_of({"bad": _url_entry(server, data, sha256_prefix="deadbeef")})
    with pytest.raises(ChecksumError, match="should start deadbeef"):
        fetch_entry(get_entry("bad"), progress=False)


def test_without_a_publisher_checksum_the_first_download_is_the_reference(server, cache, registry_of):
    data = payload(SIZE, seed=6)
    registry_of({"m": _url_entry(server, data)})
    fetch_entry(get_entry("m"), progress=False)
    record = json.loads((cache / "m" / ".v2a-weights.json").read_text())["files"]["model.pth"]
    assert record["sha256"] == sha256(data) and record["checked"] == "recorded at first download"
    # the file is lost and the server now serves other bytes: the recorded hash refuses them
    entry_path(get_entry("m")).unlink()
    server.files["/rel/model.pth"] = payload(SIZE, seed=7)
    with pytest.raises(ChecksumError):
        fetch_entry(get_entry("m"), progress=False)
    assert not entry_path(get_entry("m")).exists()


def test_a_hub_snapshot_takes_safetensors_and_checks_every_file(server, cache, registry_of, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    config = b'{"_class_name": "AudioLDMPipeline"}'
    weights = payload(200_000, seed=8)
    blobs = {"model_index.json": config, "unet/config.json": b"{}", "unet/diffusion_pytorch_model.safetensors": weights,
             "unet/diffusion_pytorch_model.bin": b"pickle", "vocoder/pytorch_model.bin": payload(5000, seed=9),
             "unet/diffusion_pytorch_model.fp16.safetensors": b"half", "README.md": b"card"}
    tree = []
    for path, data in blobs.items():
        server.files[f"/org/repo/resolve/main/{path}"] = data
        if path.endswith((".safetensors", ".bin")):
            tree.append({"type": "file", "path": path, "size": len(data), "oid": "x" * 40,
                         "lfs": {"oid": sha256(data), "size": len(data)}})
        else:
            git = hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()
            tree.append({"type": "file", "path": path, "size": len(data), "oid": git})
    tree.append({"type": "directory", "path": "unet", "oid": "y" * 40, "size": 0})
    server.json["/api/models/org/repo/tree/main"] = tree
    registry_of({"snap": {"description": "t", "licence": "t", "fills": ["generator.weights"],
                          "source": {"hf": "org/repo", "revision": "main",
                                     "include": ["model_index.json", "*/*.json", "*/*.safetensors", "*/*.bin"],
                                     "exclude": ["*fp16*"]}}})
    st = fetch_entry(get_entry("snap"), progress=False)
    root = entry_path(get_entry("snap"))
    assert st.state == "present" and root == cache / "snap"
    got = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    assert got == ["model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
                   "vocoder/pytorch_model.bin"]  # .bin only where no safetensors; no fp16, no README
    assert (root / "unet/diffusion_pytorch_model.safetensors").read_bytes() == weights
    # a small file that is not what the hub's git id says is refused
    server.files["/org/repo/resolve/main/unet/config.json"] = b"[]"  # same size, other bytes
    (root / "unet/config.json").unlink()
    with pytest.raises(ChecksumError, match="git-sha1"):
        fetch_entry(get_entry("snap"), progress=False)


def test_a_zenodo_file_is_held_to_the_records_md5(server, cache, registry_of, monkeypatch):
    monkeypatch.setenv("V2A_ZENODO_ENDPOINT", server.url)
    data = payload(300_000, seed=10)
    server.files["/records/42/files/Cnn14_16k_mAP%3D0.438.pth"] = data
    server.json["/api/records/42"] = {"files": [{"key": "Cnn14_16k_mAP=0.438.pth", "size": len(data),
                                                 "checksum": "md5:" + hashlib.md5(data).hexdigest()}]}
    raw = {"description": "t", "licence": "t", "fills": ["extractors.panns.checkpoint"],
           "source": {"zenodo": 42, "key": "Cnn14_16k_mAP=0.438.pth"}, "file": "Cnn14_16k_mAP=0.438.pth"}
    registry_of({"z": raw})
    fetch_entry(get_entry("z"), progress=False)
    record = json.loads((cache / "z" / ".v2a-weights.json").read_text())["files"]["Cnn14_16k_mAP=0.438.pth"]
    assert record["checked"] == "publisher" and record["publisher_md5"] == hashlib.md5(data).hexdigest()
    entry_path(get_entry("z")).unlink()
    server.json["/api/records/42"]["files"][0]["checksum"] = "md5:" + "0" * 32
    with pytest.raises(ChecksumError, match="md5"):
        fetch_entry(get_entry("z"), progress=False)


def test_verify_reads_every_byte(server, cache, registry_of):
    data = payload(SIZE, seed=11)
    registry_of({"m": _url_entry(server, data, sha256=sha256(data))})
    fetch_entry(get_entry("m"), progress=False)
    assert verify_entry(get_entry("m")).state == "present"
    path = entry_path(get_entry("m"))
    flipped = bytearray(data)
    flipped[SIZE // 2] ^= 0xFF
    path.write_bytes(bytes(flipped))  # same size: only the checksum can tell
    assert status(get_entry("m")).state == "present"
    assert verify_entry(get_entry("m")).state == "corrupt"
    assert status(get_entry("m")).state == "corrupt"  # remembered by the cheap listing too
    # fetch repairs it
    fetch_entry(get_entry("m"), progress=False)
    assert verify_entry(get_entry("m")).state == "present"


def test_fetching_offline_is_refused(cache, registry_of, monkeypatch):
    registry_of({"m": {"description": "t", "licence": "t", "fills": [], "source": {"url": "http://127.0.0.1:9/x"},
                       "file": "x"}})
    monkeypatch.setenv("V2A_OFFLINE", "1")
    with pytest.raises(WeightsOfflineError, match="offline"):
        fetch_entry(get_entry("m"), progress=False)
