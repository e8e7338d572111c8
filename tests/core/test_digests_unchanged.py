"""Run ids, cache keys, part names and model ids stay byte for byte what they were (issue 26).

Every value below was computed with main at 2889c7a, before the hand-written `sha256(...).hexdigest()[:N]`
recipes became `v2a.core.fingerprint.short_digest`: an existing run's id, its cached shards and statistics and
its results parts are found again only while these hold.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from v2a.config import config_from_dict
from v2a.models import load_profile

CONFIG = {"out": "/tmp/x", "data": {"csv": "a.csv", "videos": "v"}, "profile": "tiny"}


def test_the_config_digests_and_the_default_run_id():
    from flows.pipeline import default_run_id
    from tasks.operations import location_digest

    cfg = config_from_dict(CONFIG)
    assert cfg.digest() == "cefdba3d68ed9602"
    assert cfg.digest("profile", "data", "embed", "train", "generate") == "449fa2a2b0531426"
    assert location_digest("/tmp/x") == "2e56aa"
    assert default_run_id(cfg) == "run-449fa2a2-2e56aa"


def test_the_profile_digest_of_the_task_cache():
    from tasks.caching import profile_digest

    # Main 2889c7a gave 72308f129977731a; the tiny profile has since gained its `synchformer` section (DeSync),
    # which is profile content: the task caches of tiny runs were rebuilt once. Run ids do not read it.
    assert profile_digest("tiny") == "adfdb90927cce12d"


def test_shard_keys_part_names_and_array_fingerprints():
    from v2a.config import EmbedConfig
    from v2a.stages.embed import shard_settings
    from v2a.io.generations import shard_key as generation_key
    from v2a.io.parquet import part_name
    from v2a.mapper.trainer import fingerprint_arrays
    from v2a.stages.embed import shard_key as embed_key

    assert embed_key(["a", "b"], "clip", "clap", {"frames": 8}) == "f12a7801a4e9504a"
    # The embed stage's key of a shard, with the settings the task gives it (the audio rate among them).
    assert embed_key(["a", "b"], "clip", "clap", shard_settings(EmbedConfig(num_frames=8, max_seconds=10.0))) == "f9a70ef837425248"
    assert embed_key(["a", "b"], "clip", "clap", shard_settings(EmbedConfig(num_frames=8, max_seconds=10.0, frame_rate=1.0))) == "7418a485211b3d23"
    assert generation_key("run-1", ["b", "a"], 2) == "272bd5b4c2517448"
    assert part_name("evaluate-run", "run-1", "test", ["fd", "kl"], None, 1.5) == "part-89dd6d08dfc6d441.parquet"
    assert fingerprint_arrays(np.arange(6, dtype=np.float32).reshape(2, 3),
                              np.ones((2, 3), np.float32)) == "ba94372b5265eac2"


def test_extractor_model_ids_and_reference_statistics_names(tmp_path):
    from v2a.metrics.extractors import build_extractors
    from v2a.metrics.reference_stats import reference_stats

    tiny = build_extractors({k: v for k, v in load_profile("tiny")["extractors"].items() if k != "synchformer"})
    assert {k: e.model_id for k, e in tiny.items()} == {
        "panns": "panns-cnn14-16k@random-seed0:f4013adaae", "vggish": "vggish@random-seed0:995bb69eea",
        "wav2clip": "wav2clip@random-seed0:79f4826f58", "passt": "passt-s-swa-32k@random-seed0:cab2154fb5",
        "imagebind": "imagebind-huge@random-seed0:82642c236e"}
    quiet = np.zeros(16000, np.float32)
    reference_stats({"a": quiet, "b": quiet}, 16000, tiny["panns"], 10.0, tmp_path, progress=False, loading="x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["panns-cnn14-16k-3b254bcb36c9a1ef.json",
                                                          "panns-cnn14-16k-3b254bcb36c9a1ef.safetensors"]
    paper = load_profile("paper-arch")["extractors"]
    built = build_extractors({k: paper[k] for k in ("panns", "vggish", "wav2clip", "passt")})
    assert {k: e.model_id for k, e in built.items()} == {
        "panns": "panns-cnn14-16k@random-seed0:c9684688b2", "vggish": "vggish@random-seed0:1a14d684f6",
        "wav2clip": "wav2clip@random-seed0:0f50a8678b", "passt": "passt-s-swa-32k@random-seed0:825960e6fd"}


def test_the_extractors_settings_build_the_same_networks():
    """The frozen settings that replaced each DEFAULTS dict and constructor defaults build the same seeded
    networks: the same outputs for the same clip (sums of absolute values, recorded at 2889c7a)."""
    from v2a.metrics.extractors import build_extractors
    from v2a.metrics.scores import outputs

    tiny = build_extractors(load_profile("tiny")["extractors"], names=["panns", "vggish", "wav2clip", "passt"])
    wave = [np.sin(np.arange(16000 * 3) / 9.0).astype(np.float32)]
    recorded = {"panns": {"embedding": 3943.6615858078003, "logits": 33952.119255542755},
                "vggish": {"frames": 3222.715530514717}, "wav2clip": {"embedding": 147.604877948761},
                "passt": {"embedding": 15.842209808528423, "logits": 46.297461667098105}}
    for name, values in recorded.items():
        got = outputs(tiny[name], wave)
        assert {k: float(np.abs(np.asarray(got[k][0], np.float64)).sum()) for k in values} == \
            pytest.approx(values, rel=1e-6), name


@pytest.mark.parametrize("obj, n", [("folder/gen", 10), ({"b": [1, 2.5], "a": None}, 16),
                                    ([("x", 3, "mtime=1")], 24), ("s3://bucket/out", 12)])
def test_short_digest_is_the_recipes_it_replaced(obj, n):
    from v2a.core.fingerprint import short_digest

    payload = obj if isinstance(obj, str) else json.dumps(obj, sort_keys=True, default=str)
    assert short_digest(obj, n) == hashlib.sha256(payload.encode()).hexdigest()[:n]
