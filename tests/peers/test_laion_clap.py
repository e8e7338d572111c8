"""Our CLAP audio path against laion_clap's CLAP_Module.get_audio_embedding_from_data, same weights.

laion_clap builds its text tower from the hub ('roberta') unless told 'transformer'; only the audio
branch and its projection make audio embeddings, so those are copied into our HTSAT-tiny CLAP (with a
small RoBERTa text branch) and the two are run on the same 48 kHz audio.
"""

import contextlib

import numpy as np
import pytest
import torch


@pytest.fixture(scope="module")
def pair():
    pytest.importorskip("laion_clap")
    from v2a.models import build_clap, load_profile
    from v2a.models.clap import _hub_forced_offline

    with _hub_forced_offline(), contextlib.redirect_stdout(None):
        import laion_clap

        torch.manual_seed(0)
        peer = laion_clap.CLAP_Module(enable_fusion=False, amodel="HTSAT-tiny", tmodel="transformer", device="cpu")
    peer.model.eval()
    section = {**load_profile("paper-arch")["clap"], "text": load_profile("tiny")["clap"]["text"],
               "dtype": "float32", "tokenizer": "bytes"}
    section["audio"] = {**section["audio"], "padding": "repeat"}
    ours = build_clap(section)
    audio_state = {k: v for k, v in peer.model.state_dict().items()
                   if k.startswith(("audio_branch.", "audio_projection."))}
    result = ours.net.load_state_dict(audio_state, strict=False)
    assert not result.unexpected_keys
    assert not [k for k in result.missing_keys if k.startswith(("audio_branch.", "audio_projection."))]
    return peer, ours


def _quantised(x):  # laion_clap rounds its input to int16 first; give it audio already on that grid
    return (np.round(np.clip(x, -1, 1) * 32767) / 32767).astype(np.float32)


def test_ten_second_clips_give_laions_embeddings(pair):
    peer, ours = pair
    rng = np.random.default_rng(1)
    audio = _quantised(rng.standard_normal((2, 480000)) * 0.1)
    theirs = peer.get_audio_embedding_from_data(audio)
    np.testing.assert_allclose(ours.encode_prepared(torch.from_numpy(audio)), theirs, rtol=0, atol=2e-5)


def test_repeat_padding_is_laions_repeatpad(pair):
    from v2a.media.resample import resample

    peer, ours = pair
    wave16 = (np.random.default_rng(2).standard_normal(3 * 16000) * 0.1).astype(np.float32)
    mine = ours.encode_audio([wave16], 16000)
    # the same normalisation and resampling, then laion's own padding of the short 48 kHz clip
    w = wave16 - wave16.mean()
    w = w / (np.abs(w).max() + 1e-8) * 0.5
    short48 = resample(torch.from_numpy(w), 16000, 48000).numpy()
    theirs = peer.get_audio_embedding_from_data(_quantised(short48)[None])
    assert float(np.sum(mine * theirs)) > 1 - 1e-6  # only laion's int16 rounding of the input differs


def test_a_laion_layout_checkpoint_reads_the_same_in_laion_clap_and_in_our_loader(tmp_path):
    """630k-audioset-best.pt's nesting: {'epoch', 'name', 'state_dict': {'module.*'}, 'optimizer'}, with the
    text position_ids that transformers >= 4.31 no longer keeps (small widths: the tiny profile's CLAP)."""
    factory = pytest.importorskip("laion_clap.clap_module.factory")
    from v2a.models import build_clap, load_profile

    section = load_profile("tiny")["clap"]
    source = build_clap(section)
    state = {f"module.{k}": v for k, v in source.net.state_dict().items()}
    state["module.text_branch.embeddings.position_ids"] = torch.arange(80)[None]
    path = tmp_path / "630k-audioset-best.pt"
    torch.save({"epoch": 45, "name": "fixture", "state_dict": state, "optimizer": {"state": {}, "param_groups": []}},
               path)
    theirs = factory.load_state_dict(str(path))
    loaded = build_clap({**section, "weights": str(path), "seed": 99})
    ours = loaded.net.state_dict()
    assert set(theirs) == set(ours)
    for k, v in theirs.items():
        torch.testing.assert_close(ours[k], v, rtol=0, atol=0)
    wave = [(np.random.default_rng(3).standard_normal(16000 * 2) * 0.1).astype(np.float32)]
    np.testing.assert_allclose(loaded.encode_audio(wave, 16000), source.encode_audio(wave, 16000), atol=1e-6)
