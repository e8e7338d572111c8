"""Profiles name registry entries; offline a missing one fails at once naming the field and the fetch
command; online it is fetched; `v2a weights` lists, fetches and verifies; nothing forces offline mode."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.weights.conftest import payload, sha256
from v2a.models import CheckpointNotFoundError, load_profile

REPO = Path(__file__).resolve().parents[2]


def test_registry_covers_every_checkpoint_the_paper_profile_and_its_variants_can_use():
    from v2a.models.profile import generator_variants, weight_fields
    from v2a.weights import registry

    entries = registry()
    names = [v for _, v in weight_fields(load_profile("paper", resolve_weights=False))]
    names += [variant["paper"]["weights"] for variant in generator_variants().values()]
    assert set(names) <= set(entries)
    for entry in entries.values():
        assert entry.licence and entry.fills and entry.where
    for name in ("audioldm-s-full-ckpt", "audioldm-m-full-ckpt", "audioldm-l-full-ckpt"):
        assert entries[name].fills == ("clap.weights", "generator.weights")  # an original .ckpt builds both


def test_registry_names_resolve_to_the_cache_and_local_paths_stay(cache):
    prof = load_profile("paper")
    assert prof["clap"]["weights"] == str(cache / "audioldm-s-full-v2-ckpt" / "audioldm-s-full-v2.ckpt")
    assert prof["generator"]["weights"] == str(cache / "audioldm-s-full-v2")
    assert prof["extractors"]["panns"]["checkpoint"] == str(cache / "panns-cnn14-16k" / "Cnn14_16k_mAP=0.438.pth")
    mine = load_profile("paper", {"clap.weights": "/models/a.ckpt", "clip.weights": "openai"})
    assert mine["clap"]["weights"] == "/models/a.ckpt" and mine["clip"]["weights"] == "openai"
    assert load_profile("paper", resolve_weights=False)["clap"]["weights"] == "audioldm-s-full-v2-ckpt"
    assert load_profile("paper:audioldm-l")["generator"]["weights"] == str(cache / "audioldm-l-full")


@pytest.mark.parametrize("component, field", [
    ("clip", "clip.weights"), ("clap", "clap.weights"), ("generator", "generator.weights"),
    ("extractor:panns", "extractors.panns.checkpoint"), ("extractor:wav2clip", "extractors.wav2clip.checkpoint"),
])
def test_offline_a_missing_entry_fails_at_once_naming_field_and_fetch_command(cache, monkeypatch, component, field):
    from v2a.runtime.model_cache import get_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    get_model.cache_clear()
    start = time.perf_counter()
    with pytest.raises(CheckpointNotFoundError) as err:
        get_model("paper", component)
    assert time.perf_counter() - start < 5.0
    assert err.value.field == field
    assert f"`{field}`" in str(err.value) and "`v2a weights fetch --profile paper`" in str(err.value)


def test_a_builder_called_directly_names_the_entry_to_fetch(cache, monkeypatch):
    from v2a.models import build_clap

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CheckpointNotFoundError, match=r"`v2a weights fetch audioldm-s-full-v2-ckpt`"):
        build_clap(load_profile("paper")["clap"])


def test_an_old_hub_id_offline_points_at_its_registry_entry(monkeypatch):
    err = CheckpointNotFoundError("generator.weights", "cvssp/audioldm-s-full-v2", "not in the local hub cache")
    assert "`v2a weights fetch audioldm-s-full-v2`" in str(err) and "`generator.weights: audioldm-s-full-v2`" in str(err)


def test_online_a_missing_entry_is_fetched_before_the_model_is_built(server, cache, registry_of):
    from v2a.models.profile_weights import ensure_weights
    from v2a.weights import get_entry, status

    data = payload(4096, seed=20)
    server.files["/vggish.pth"] = data
    registry_of({"vggish-10086976": {"description": "t", "licence": "t", "fills": ["extractors.vggish.checkpoint"],
                                     "source": {"url": f"{server.url}/vggish.pth"}, "file": "vggish-10086976.pth",
                                     "sha256": sha256(data)}})
    prof = load_profile("paper")
    ensure_weights(prof, ["extractors.vggish"], profile_name="paper", progress=False)
    assert Path(prof["extractors"]["vggish"]["checkpoint"]).read_bytes() == data
    assert status(get_entry("vggish-10086976")).state == "present"
    assert [r["path"] for r in server.log] == ["/vggish.pth"]


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})}, timeout=120)


def test_weights_list_for_the_paper_profile_shows_every_entry_and_the_fetch_command(cache):
    from v2a.models.profile_weights import profile_entries

    out = _cli("weights", "list", "--profile", "paper")
    assert out.returncode == 0, out.stderr
    for entry in profile_entries("paper"):
        assert f"{entry.name} " in out.stdout
    assert "missing" in out.stdout and "v2a weights fetch --profile paper" in out.stdout
    assert str(cache) in out.stdout


def test_weights_list_shows_present_missing_and_corrupt(server, cache, registry_of, capsys):
    from flows.cli import main
    from v2a.weights import fetch_entry, get_entry

    def entry(path, data):
        server.files[path] = data
        return {"description": "t", "licence": "L", "fills": ["clip.weights"], "source": {"url": server.url + path},
                "sha256": sha256(data)}

    registry_of({"good": entry("/good.bin", payload(5000, 1)), "bad": entry("/bad.bin", payload(5000, 2)),
                 "absent": entry("/absent.bin", payload(10, 3))})
    fetch_entry(get_entry("good"), progress=False)
    fetch_entry(get_entry("bad"), progress=False)
    (cache / "bad" / "bad.bin").write_bytes(b"short")
    assert main(["weights", "list"]) == 0
    rows = {line.split()[0]: line.split()[1] for line in capsys.readouterr().out.splitlines()[2:] if line[:1] != " "
            and not line.startswith("to fetch")}
    assert rows == {"good": "present", "bad": "corrupt", "absent": "missing"}
    assert main(["weights", "verify", "good"]) == 0
    assert main(["weights", "verify"]) == 2  # the corrupt one fails the command
    assert "bad" in capsys.readouterr().err


def test_weights_fetch_offline_is_a_one_line_error(cache, monkeypatch, capsys):
    from flows.cli import main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["weights", "fetch", "--profile", "paper"]) == 2
    assert "offline mode is on" in capsys.readouterr().err


def test_the_command_line_does_not_switch_the_hub_offline():
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    code = "import os, flows.cli; print(os.environ.get('HF_HUB_OFFLINE'), os.environ.get('TRANSFORMERS_OFFLINE'))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                         env={**env, "PYTHONPATH": str(REPO)})
    assert out.stdout.split() == ["None", "None"], out.stderr
