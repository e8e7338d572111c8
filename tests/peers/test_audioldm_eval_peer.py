"""FD / KL / IS against audioldm_eval 0.0.3 (haoheliu/audioldm_eval), scored from files.

audioldm_eval is installed with --no-deps; its package __init__ imports scikit-image, so its modules are
loaded on their own. Its file reader (`datasets/load_mel.py`, `WaveDataset.read_from_file`) keeps channel 0,
removes the mean and resamples with torchaudio; its metrics (`metrics/fid.py`, `kl.py`, `isc.py`) take
feature dictionaries. Both sides here run the same tiny Cnn14 (our extractor), so what is compared is the
reading of the files (stereo 44.1 kHz references, 16 kHz mono generations) and the formulas.
"""

import numpy as np
import pytest
import soundfile as sf
import torch

from tests.peers.loaders import load_submodule

N = 10  # audioldm_eval's IS uses 10 splits


def _files(tmp_path):
    rng = np.random.default_rng(0)
    gen, ref = tmp_path / "gen", tmp_path / "ref"
    gen.mkdir()
    ref.mkdir()
    t16, t44 = np.arange(32000) / 16000, np.arange(88200) / 44100
    for i in range(N):
        # 2 s each: audioldm_eval pads to at least 2 s and cuts nothing, v2a cuts or pads to the clip length.
        g = 0.3 * np.sin(2 * np.pi * (200 + 90 * i) * t16) + 0.05 * rng.standard_normal(32000) + 0.02 * i
        sf.write(gen / f"clip{i}.wav", g.astype(np.float32), 16000, subtype="FLOAT")
        left = 0.3 * np.sin(2 * np.pi * (230 + 80 * i) * t44) + 0.1 * rng.standard_normal(88200) + 0.1
        right = 0.5 * rng.standard_normal(88200)  # a second channel the rules treat differently
        sf.write(ref / f"clip{i}.wav", np.stack([left, right], 1).astype(np.float32), 44100, subtype="FLOAT")
    return gen, ref


def _soundfile_load(path):
    """torchaudio.load's (channels, samples) float32 result, without torchaudio 2.9's torchcodec backend."""
    wave, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return torch.from_numpy(wave.T.copy()), sr


@pytest.fixture
def peer(monkeypatch):
    pytest.importorskip("scipy")
    load_mel = load_submodule("audioldm_eval", "datasets.load_mel", "audioldm-eval")
    monkeypatch.setattr(load_mel.torchaudio, "load", _soundfile_load)
    return {"load_mel": load_mel, "fid": load_submodule("audioldm_eval", "metrics.fid", "audioldm-eval"),
            "kl": load_submodule("audioldm_eval", "metrics.kl", "audioldm-eval"),
            "isc": load_submodule("audioldm_eval", "metrics.isc", "audioldm-eval")}


def _their_features(peer, folder, panns):
    data = peer["load_mel"].WaveDataset(str(folder), sr=16000)
    waves = [data[i][0][0].numpy() for i in range(len(data))]
    names = [data[i][1] for i in range(len(data))]
    emb, logits = panns.embed_and_logits(waves)
    return {"2048": torch.from_numpy(emb), "logits": torch.from_numpy(logits), "file_path_": names}


def test_fd_kl_is_from_stereo_44k_files_equal_audioldm_eval_under_its_channel_rule(tmp_path, peer):
    from v2a.metrics.classification import kl_softmax_audioldm_eval
    from v2a.metrics.scores import load_audio_folder
    from v2a.runtime.model_cache import get_model
    from v2a.stages.evaluate import evaluate_folder

    panns = get_model("tiny", "extractor:panns")
    gen, ref = _files(tmp_path)
    theirs_gen, theirs_ref = _their_features(peer, gen, panns), _their_features(peer, ref, panns)
    rows = evaluate_folder(str(gen), str(tmp_path / "results"), {"panns": panns}, reference_dir=str(ref),
                           clip_seconds=2.0, metrics=["fd", "kl", "is"], channel_rule="channel0-minus-mean")
    ours = {r["metric"]: r["value"] for r in rows}
    assert {r["channel_rule"] for r in rows} == {"channel0-minus-mean"}

    fd = peer["fid"].calculate_fid(theirs_gen, theirs_ref, "2048")["frechet_distance"]
    assert ours["fd"] == pytest.approx(fd, rel=1e-5)
    isc = peer["isc"].calculate_isc(theirs_gen, "logits", rng_seed=2020, samples_shuffle=True, splits=10)
    assert ours["is"] == pytest.approx(isc["inception_score_mean"], rel=1e-6)
    kl, _, _ = peer["kl"].calculate_kl(theirs_gen, theirs_ref, "logits", same_name=True)
    # v2a's KL row is av-benchmark's (no epsilon); audioldm_eval's own formula is kept beside it.
    gen_read = load_audio_folder(gen, 16000, channel_rule="channel0-minus-mean")
    ref_read = load_audio_folder(ref, 16000, channel_rule="channel0-minus-mean")
    ids = sorted(gen_read)
    g_logits = panns.logits([gen_read[i][0] for i in ids])
    r_logits = panns.logits([ref_read[i][0] for i in ids])
    assert kl_softmax_audioldm_eval(g_logits, r_logits) == pytest.approx(kl["kullback_leibler_divergence_softmax"],
                                                                         rel=1e-4)
    assert ours["kl"] == pytest.approx(kl["kullback_leibler_divergence_softmax"], rel=0.05)


def test_only_audioldm_evals_rule_reads_the_files_as_audioldm_eval_does(tmp_path, peer):
    from v2a.metrics.scores import load_audio_folder

    _, ref = _files(tmp_path)
    data = peer["load_mel"].WaveDataset(str(ref), sr=16000)
    theirs = {name.removesuffix(".wav"): data[i][0][0].numpy() for i, name in enumerate(data[j][1] for j in range(N))}
    gaps = {}
    for rule in ("channel0-minus-mean", "mean", "av-benchmark"):
        ours = load_audio_folder(ref, 16000, channel_rule=rule)
        gaps[rule] = max(np.abs(ours[k][0] - theirs[k]).max() for k in theirs)
    assert gaps["channel0-minus-mean"] < 1e-5
    assert gaps["mean"] > 0.05 and gaps["av-benchmark"] > 0.05


def test_av_benchmarks_rule_is_its_read_from_file(tmp_path):
    """av-benchmark `AudioDataset.read_from_file`: waveform.mean(dim=0); waveform - waveform.mean(); Resample."""
    import torchaudio

    from v2a.metrics.scores import load_audio_folder

    _, ref = _files(tmp_path)
    ours = load_audio_folder(ref, 16000, channel_rule="av-benchmark")
    for name, (wave, sr) in ours.items():
        raw, file_sr = _soundfile_load(ref / f"{name}.wav")
        mono = raw.mean(dim=0)
        mono = mono - mono.mean()
        theirs = torchaudio.transforms.Resample(file_sr, 16000)(mono).numpy()
        assert sr == 16000 and np.abs(wave - theirs).max() < 1e-5
