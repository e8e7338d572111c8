"""`--protocol audioldm-eval` against audioldm_eval 0.0.3's own code, from files, on identical random weights.

Theirs: `WaveDataset` reads each folder (channel 0, mean removed, `torchaudio.functional.resample` to 16 kHz,
padded to 2 s, never cut), their own `Cnn14` (`feature_extractors/panns/models.py`, built as
`EvaluationHelper` builds it for 16 kHz, loading `ckpt/Cnn14_16k_mAP=0.438.pth` from the working folder)
embeds each file alone as `get_featuresdict` does, and `calculate_fid` / `calculate_kl` / `calculate_isc`
score the feature dictionaries as `calculate_metrics` calls them. Ours: `evaluate_folder(...,
protocol="audioldm-eval")` with v2a's Cnn14 loading the same checkpoint file.

The files: stereo 44.1-kHz references whose channels differ and carry DC offsets, generations at 16 kHz
mono and at 22.05 kHz stereo, lengths from 1.2 s (padded to 2 s) to 3.1 s (kept whole).
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import soundfile as sf
import torch

from tests.peers.loaders import load_submodule

N = 20  # audioldm_eval's IS takes 10 splits: two files each (one per split always gives IS = 1)
PANNS_16K = dict(sample_rate=16000, window_size=512, hop_size=160, mel_bins=64, fmin=50, fmax=8000, classes_num=527)


def _soundfile_load(path):
    """torchaudio.load's (channels, samples) float32 result, without torchaudio 2.9's torchcodec backend."""
    wave, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return torch.from_numpy(wave.T.copy()), sr


def _files(tmp_path):
    rng = np.random.default_rng(3)
    gen, ref = tmp_path / "gen", tmp_path / "ref"
    gen.mkdir()
    ref.mkdir()
    for i in range(N):
        seconds = [1.2, 2.0, 3.1, 2.6][i % 4]
        rate, channels = (16000, 1) if i % 2 else (22050, 2)
        t = np.arange(int(seconds * rate)) / rate
        g = 0.3 * np.sin(2 * np.pi * (150 + 97 * i) * t)[:, None] + 0.1 * rng.standard_normal((t.size, channels))
        sf.write(gen / f"clip{i:02d}.wav", (g + 0.03 * i).astype(np.float32), rate, subtype="FLOAT")
        t44 = np.arange(int([3.0, 1.5, 2.5][i % 3] * 44100)) / 44100
        left = 0.3 * np.sin(2 * np.pi * (180 + 71 * i) * t44) + 0.1 * rng.standard_normal(t44.size) + 0.08
        right = 0.5 * rng.standard_normal(t44.size) - 0.1
        sf.write(ref / f"clip{i:02d}.wav", np.stack([left, right], 1).astype(np.float32), 44100, subtype="FLOAT")
    return gen, ref


@pytest.fixture
def peer(tmp_path, monkeypatch):
    pytest.importorskip("scipy")
    pytest.importorskip("torchlibrosa")
    load_mel = load_submodule("audioldm_eval", "datasets.load_mel", "audioldm-eval")
    monkeypatch.setattr(load_mel.torchaudio, "load", _soundfile_load)
    # With the package's own __init__ skipped (it imports scikit-image), its subpackages import normally.
    models = importlib.import_module("audioldm_eval.feature_extractors.panns.models")
    reference_models = load_submodule("panns_inference", "models", "panns-inference")
    # Their Cnn14 loads its weights from ./ckpt in its constructor (and fetches them when the folder lacks them).
    torch.manual_seed(0)
    state = reference_models.Cnn14(**PANNS_16K).state_dict()
    # PANNs' init leaves every clip with nearly the same logits (KL ~ 0, IS = 1); a wider random head makes
    # the class distributions differ, so KL and IS measure something.
    state["fc_audioset.weight"] = torch.randn(527, 2048) * 0.5
    state["fc_audioset.bias"] = torch.randn(527)
    work = tmp_path / "work"
    (work / "ckpt").mkdir(parents=True)
    checkpoint = work / "ckpt" / "Cnn14_16k_mAP=0.438.pth"
    torch.save({"iteration": 0, "model": state}, checkpoint)
    (work / "ckpt" / "Cnn14_mAP=0.431.pth").write_bytes(b"")
    monkeypatch.chdir(work)
    cnn14 = models.Cnn14(features_list=["2048", "logits"], **PANNS_16K).eval()
    return {"load_mel": load_mel, "cnn14": cnn14, "checkpoint": checkpoint,
            "fid": load_submodule("audioldm_eval", "metrics.fid", "audioldm-eval"),
            "kl": load_submodule("audioldm_eval", "metrics.kl", "audioldm-eval"),
            "isc": load_submodule("audioldm_eval", "metrics.isc", "audioldm-eval")}


def _their_features(peer, folder):
    """`EvaluationHelper.get_featuresdict`: one file at a time through their Cnn14."""
    data = peer["load_mel"].WaveDataset(str(folder), sr=16000)
    out = {"2048": [], "logits": [], "file_path_": []}
    with torch.no_grad():
        for i in range(len(data)):
            wave, name = data[i]
            feats = peer["cnn14"](wave.float())  # (1, samples), the DataLoader's batch of one after squeeze(1)
            out["2048"].append(feats["2048"])
            out["logits"].append(feats["logits"])
            out["file_path_"].append(name)
    return {"2048": torch.cat(out["2048"]), "logits": torch.cat(out["logits"]), "file_path_": out["file_path_"]}


def test_audioldm_eval_protocol_equals_audioldm_eval_from_files(tmp_path, peer):
    from v2a.metrics.extractors import build_extractor
    from v2a.models import load_profile
    from v2a.stages.evaluate import evaluate_folder

    gen, ref = _files(tmp_path)
    theirs_gen, theirs_ref = _their_features(peer, gen), _their_features(peer, ref)
    fd = peer["fid"].calculate_fid(theirs_gen, theirs_ref, "2048")["frechet_distance"]
    kl, _, _ = peer["kl"].calculate_kl(theirs_gen, theirs_ref, "logits", same_name=True)
    isc = peer["isc"].calculate_isc(theirs_gen, "logits", rng_seed=2020, samples_shuffle=True, splits=10)

    panns = build_extractor("panns", {**load_profile("paper")["extractors"]["panns"],
                                      "checkpoint": str(peer["checkpoint"])})
    rows = evaluate_folder(str(gen), str(tmp_path / "results"), {"panns": panns}, reference_dir=str(ref),
                           protocol="audioldm-eval")
    by = {r["metric"]: r for r in rows}
    assert set(by) == {"fd", "kl", "is"}
    for r in rows:
        assert r["protocol"] == "audioldm-eval" and r["channel_rule"] == "channel0-minus-mean"
        assert r["clip_seconds"] is None and r["sample_rate"] == 16000
    assert by["fd"]["value"] == pytest.approx(fd, rel=1e-4)
    assert by["kl"]["value"] == pytest.approx(kl["kullback_leibler_divergence_softmax"], rel=1e-4)
    assert by["is"]["value"] == pytest.approx(isc["inception_score_mean"], rel=1e-4)
    assert isc["inception_score_mean"] > 1.003 and kl["kullback_leibler_divergence_softmax"] > 0.01  # not degenerate
    # The tolerance tells the formulas apart: av-benchmark's KL (no epsilon) on the same logits is further off.
    from v2a.metrics.classification import kl_softmax

    no_eps = kl_softmax(theirs_gen["logits"].numpy(), theirs_ref["logits"].numpy())
    assert abs(no_eps / kl["kullback_leibler_divergence_softmax"] - 1) > 1e-3
