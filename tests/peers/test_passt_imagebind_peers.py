"""PaSST and ImageBind extractors against their PyPI packages on identical random weights.

hear21passt 0.0.26 and imagebind-unofficial 0.1.1 are installed with --no-deps (model code only;
nothing is downloaded). Each peer is built at full size with random weights, its state dict saved in
the layout of the released file (`passt-s-f128-p16-s10-ap.476-swa.pt`: the net's state dict;
`imagebind_huge.pth`: the whole six-modality model), loaded by our extractor's own loader, and the
outputs compared on the same inputs.
"""

import contextlib
import io
import sys
import types

import numpy as np
import pytest
import torch

from tests.peers.loaders import load_submodule


def _noise(seconds, seed, rate):
    return (np.random.default_rng(seed).standard_normal(int(seconds * rate)) * 0.1).astype(np.float32)


def _paper_section(name, checkpoint):
    from v2a.models import load_profile

    return {**load_profile("paper")["extractors"][name], "checkpoint": str(checkpoint)}


PASST_SMALL = {"embed_dim": 64, "depth": 2, "num_heads": 4}


def _passt_peer():
    pytest.importorskip("timm")
    passt = pytest.importorskip("hear21passt.models.passt")
    preprocess = pytest.importorskip("hear21passt.models.preprocess")
    wrapper = pytest.importorskip("hear21passt.wrapper")
    with contextlib.redirect_stdout(io.StringIO()):  # it prints the whole model
        torch.manual_seed(0)
        # passt_s_swa_p16_128_ap476's class and input layout at a reduced width and depth (full size
        # takes minutes on two cores; the module tree, and so the checkpoint layout, is the same).
        net = passt.PaSST(img_size=(128, 998), patch_size=16, stride=10, in_chans=1, num_classes=527,
                          embed_dim=PASST_SMALL["embed_dim"], depth=PASST_SMALL["depth"],
                          num_heads=PASST_SMALL["num_heads"], distilled=True).eval()
        # get_basic_model's front end (its own call would also download the weights)
        mel = preprocess.AugmentMelSTFT(n_mels=128, sr=32000, win_length=800, hopsize=320, n_fft=1024, freqm=48,
                                        timem=192, htk=False, fmin=0.0, fmax=None, norm=1, fmin_aug_range=10,
                                        fmax_aug_range=2000)
    # timm's ViT init zeroes the heads; random heads make the logit comparison mean something.
    with torch.no_grad():
        for lin in (net.head[1], net.head_dist):
            lin.weight.normal_(0, 0.05)
            lin.bias.normal_(0, 0.05)
    return wrapper.PasstBasicWrapper(mel=mel, net=net, mode="all").eval(), net


def test_passt_equals_hear21passt_on_the_released_checkpoint_layout(tmp_path):
    from v2a.metrics.extractors import build_extractor

    peer, net = _passt_peer()
    path = tmp_path / "passt-s-f128-p16-s10-ap.476-swa.pt"
    torch.save(net.state_dict(), path)
    ours = build_extractor("passt", {**_paper_section("passt", path), **PASST_SMALL})
    # An 8-s clip (padded to the 10-s window, as av-benchmark does) and a 12-s one (cut to it).
    waves = [_noise(8.0, 1, 32000), _noise(12.0, 2, 32000)]
    feats, logits = ours.embed_and_logits(waves)
    window = np.stack([np.pad(waves[0], (0, 320000 - len(waves[0]))), waves[1][:320000]])
    with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
        out = peer(torch.from_numpy(window)).numpy()
    assert out.shape == (2, 527 + PASST_SMALL["embed_dim"])
    peak = np.abs(out).max()
    assert np.abs(logits - out[:, :527]).max() < 1e-5 * peak
    assert np.abs(feats - out[:, 527:]).max() < 1e-5 * peak
    assert np.linalg.norm(feats[0] - feats[1]) > 1e-3  # different clips, different features


def test_passt_resamples_16k_audio_to_its_32k_input():
    from v2a.metrics.audio import resample
    from v2a.metrics.extractors import build_extractor
    from v2a.models import load_profile

    ours = build_extractor("passt", load_profile("tiny")["extractors"]["passt"])
    wave16 = _noise(4.0, 3, 16000)
    np.testing.assert_allclose(ours.embed([wave16], sample_rate=16000), ours.embed([resample(wave16, 16000, 32000)]),
                               rtol=1e-5, atol=1e-6)


def _imagebind_peer():
    pytest.importorskip("timm")
    pytest.importorskip("iopath")
    # The package's __init__ imports its data loaders (pytorchvideo); the model module needs none of it.
    model_mod = load_submodule("imagebind", "models.imagebind_model", "imagebind-unofficial")
    torch.manual_seed(0)
    # imagebind_huge's layout at reduced widths and depths (its full size takes minutes on two cores;
    # the module tree, and so the checkpoint layout, is the same).
    small = dict(out_embed_dim=48, vision_embed_dim=64, vision_num_blocks=2, vision_num_heads=4, text_embed_dim=32,
                 text_num_blocks=1, text_num_heads=2, audio_embed_dim=64, audio_num_blocks=2, audio_num_heads=4,
                 audio_drop_path=0.1, depth_embed_dim=32, depth_num_blocks=1, depth_num_heads=2, thermal_embed_dim=32,
                 thermal_num_blocks=1, thermal_num_heads=2, imu_embed_dim=32, imu_num_blocks=1, imu_num_heads=2)
    return model_mod, model_mod.ImageBindModel(**small).eval(), small


def test_imagebind_equals_the_imagebind_package_on_audio_and_video(tmp_path):
    from v2a.metrics.extractors import build_extractor
    from v2a.metrics.extractors.imagebind import audio_fbanks, vision_clips

    model_mod, peer, small = _imagebind_peer()
    path = tmp_path / "imagebind_huge.pth"
    torch.save(peer.state_dict(), path)
    sizes = {"out_embed_dim": 48, "vision_embed_dim": 64, "vision_blocks": 2, "vision_heads": 4,
             "audio_embed_dim": 64, "audio_blocks": 2, "audio_heads": 4}
    ours = build_extractor("imagebind", {**_paper_section("imagebind", path), **sizes})

    waves = [_noise(8.0, 4, 16000), _noise(5.0, 5, 16000)]
    audio_ours = ours.embed(waves)
    frames = np.random.default_rng(6).integers(0, 256, size=(4, 240, 320, 3), dtype=np.uint8)
    video_ours = ours.embed_frames([frames])
    with torch.no_grad():
        a = [peer({model_mod.ModalityType.AUDIO: audio_fbanks(w).unsqueeze(0)})[model_mod.ModalityType.AUDIO]
             for w in waves]
        v = peer({model_mod.ModalityType.VISION: vision_clips(frames).unsqueeze(0)})[model_mod.ModalityType.VISION]
    a = torch.cat(a).numpy()
    assert np.abs(audio_ours - a).max() < 1e-5 * np.abs(a).max()
    assert np.abs(video_ours - v.numpy()).max() < 1e-5 * np.abs(v.numpy()).max()


def _imagebind_data():
    """imagebind.data with pytorchvideo's real clip sampler; its video and transform modules (which need a
    torchvision older than ours) are placeholders, unused by the audio loader."""
    clip_sampling = load_submodule("pytorchvideo", "data.clip_sampling", "pytorchvideo")
    data_pkg = sys.modules.setdefault("pytorchvideo.data", types.ModuleType("pytorchvideo.data"))
    data_pkg.clip_sampling = clip_sampling
    encoded = types.ModuleType("pytorchvideo.data.encoded_video")
    encoded.EncodedVideo = None
    sys.modules.setdefault("pytorchvideo.data.encoded_video", encoded)
    transforms = sys.modules.setdefault("pytorchvideo.transforms", types.ModuleType("pytorchvideo.transforms"))
    sys.modules["pytorchvideo"].transforms = transforms
    return load_submodule("imagebind", "data", "imagebind-unofficial")


def test_imagebind_audio_input_equals_imagebinds_own_loader(tmp_path):
    """Our fbank clips against ImageBind's `load_and_transform_audio_data` (pytorchvideo's clip sampler)."""
    pytest.importorskip("iopath")
    data = _imagebind_data()
    import soundfile as sf

    from v2a.metrics.extractors.imagebind import audio_fbanks

    for seconds in (8.0, 10.0, 1.5):
        wave = _noise(seconds, 7, 16000)
        path = tmp_path / f"a{seconds}.wav"
        sf.write(str(path), wave, 16000, subtype="FLOAT")
        theirs = data.load_and_transform_audio_data([str(path)], "cpu")[0]
        np.testing.assert_allclose(audio_fbanks(wave).numpy(), theirs.numpy(), rtol=1e-5, atol=1e-4)
