"""FD / FAD / CS extractors against their reference packages, through the public checkpoint layouts.

Each peer model is built with random weights, saved in the layout of its public file
(``Cnn14_16k_mAP=0.438.pth``: a training checkpoint {'model': state_dict, ...};
``vggish-10086976.pth``: a plain state dict; Wav2CLIP's ``Wav2CLIP.pt``: audio_encoder.* /
audio_transform.* entries), loaded by our extractor's own loader and by the peer's, and the outputs
of the two compared on the same audio. Full sizes: these are the architectures of the paper profile.
"""

import numpy as np
import pytest
import torch

from tests.peers.loaders import load_submodule


def _noise(seconds, seed, rate=16000):
    return (np.random.default_rng(seed).standard_normal(int(seconds * rate)) * 0.1).astype(np.float32)


def _paper_section(name, checkpoint):
    from v2a.models import load_profile

    return {**load_profile("paper")["extractors"][name], "checkpoint": str(checkpoint)}


def test_cnn14_equals_panns_inference_on_an_official_layout_checkpoint(tmp_path):
    from v2a.metrics.extractors import build_extractor

    models = load_submodule("panns_inference", "models", "panns-inference")
    torch.manual_seed(0)
    peer = models.Cnn14(sample_rate=16000, window_size=512, hop_size=160, mel_bins=64, fmin=50, fmax=8000,
                        classes_num=527).eval()
    path = tmp_path / "Cnn14_16k_mAP=0.438.pth"
    torch.save({"iteration": 0, "model": peer.state_dict()}, path)
    ours = build_extractor("panns", _paper_section("panns", path))
    waves = [_noise(2.0, 1), _noise(2.0, 2)]
    emb, logits = ours.embed_and_logits(waves)
    with torch.no_grad():
        out = peer(torch.from_numpy(np.stack(waves)))
    np.testing.assert_allclose(emb, out["embedding"].numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(1 / (1 + np.exp(-logits)), out["clipwise_output"].numpy(), rtol=1e-4, atol=1e-6)


def test_vggish_equals_torchvggish_without_its_final_relu(tmp_path):
    from v2a.metrics.extractors import build_extractor

    vggish = pytest.importorskip("torchvggish")
    torch.manual_seed(1)
    peer = vggish.torchvggish._vgg(postprocess=False).eval()
    path = tmp_path / "vggish-10086976.pth"
    torch.save(peer.state_dict(), path)
    ours = build_extractor("vggish", _paper_section("vggish", path))
    wave = _noise(3.0, 3)
    frames = ours.embed([wave])[0]
    examples = vggish.vggish_input.waveform_to_examples(wave.astype(np.float64), 16000, return_tensor=True)
    with torch.no_grad():
        with_relu = peer(examples.float()).numpy()
        peer.embeddings = peer.embeddings[:-1]  # what FAD tools use: the embedding before the ReLU
        raw = peer(examples.float()).numpy()
    assert frames.shape == raw.shape == (3, 128)
    scale = float(np.abs(raw).max())
    np.testing.assert_allclose(frames, raw, rtol=0, atol=1e-4 * scale)
    np.testing.assert_allclose(np.maximum(frames, 0), with_relu, rtol=0, atol=1e-4 * scale)


def test_wav2clip_equals_the_wav2clip_package_at_batch_one(tmp_path):
    from v2a.metrics.extractors import build_extractor

    encoder = load_submodule("wav2clip", "model.encoder", "wav2clip")
    torch.manual_seed(2)
    supervised = encoder.ResNetExtractor(scenario="supervise")
    transform = encoder.MLPLayers(units=[512, 512, 512], dropout=0.1)
    release = {**{f"audio_encoder.{k}": v for k, v in supervised.encoder.state_dict().items()},
               **{f"audio_transform.{k}": v for k, v in transform.state_dict().items()}}
    path = tmp_path / "Wav2CLIP.pt"
    torch.save(release, path)
    peer = encoder.ResNetExtractor(checkpoint=torch.load(path, weights_only=True), scenario="frozen",
                                   transform=True).eval()
    ours = build_extractor("wav2clip", _paper_section("wav2clip", path))
    for seed in (4, 5):
        wave = _noise(2.0, seed)
        with torch.no_grad():
            theirs = peer(torch.from_numpy(wave)[None]).numpy()
        np.testing.assert_allclose(ours.embed([wave]), theirs, rtol=1e-4, atol=1e-5)
