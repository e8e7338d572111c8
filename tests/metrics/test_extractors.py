import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from tests.metrics.conftest import profile_extractors, tone_clip
from v2a.metrics.extractors import (ExtractorConfigError, MissingCheckpointError, build_extractor,
                                    build_extractors)
from v2a.metrics.extractors.vggish import vggish_mel_matrix


def _count(module):
    """Learned parameters: the fixed STFT / mel matrices of the PANNs front end are left out."""
    return sum(p.numel() for name, p in module.named_parameters()
               if not name.startswith(("spectrogram_extractor.", "logmel_extractor.")))


@pytest.fixture(scope="module")
def clips():
    return [tone_clip(i, seconds=10.0) for i in range(3)]


def test_tiny_panns_gives_config_sized_embeddings_and_527_logits(tiny_extractors, tiny_sections, clips):
    panns = tiny_extractors["panns"]
    emb, logits = panns.embed_and_logits(clips)
    assert emb.shape == (3, tiny_sections["panns"]["embedding_dim"])
    assert logits.shape == (3, 527)
    assert emb.dtype == np.float32 and np.all(np.isfinite(emb)) and np.all(np.isfinite(logits))
    assert panns.sample_rate == 16000 and panns.name == "panns-cnn14-16k"


def test_tiny_vggish_gives_one_128d_frame_per_096_seconds(tiny_extractors, clips):
    frames = tiny_extractors["vggish"].embed(clips + [tone_clip(9, seconds=0.5)])
    assert [f.shape for f in frames] == [(10, 128)] * 3 + [(1, 128)]


def test_tiny_wav2clip_embeds_into_the_tiny_clip_space(tiny_extractors, clips):
    emb = tiny_extractors["wav2clip"].embed(clips)
    assert emb.shape == (3, 32)
    assert np.all(np.isfinite(emb))


def test_clips_of_different_lengths_embed_like_single_clips(tiny_extractors):
    w2c = tiny_extractors["wav2clip"]
    a, b = tone_clip(1, 1.0), tone_clip(2, 1.5)
    np.testing.assert_allclose(w2c.embed([a, b]), np.concatenate([w2c.embed([a]), w2c.embed([b])]), rtol=1e-5,
                               atol=1e-6)


def test_embed_resamples_audio_given_at_another_rate(tiny_extractors):
    from v2a.metrics import audio

    wave = tone_clip(3, 2.0, sr=22050)
    panns = tiny_extractors["panns"]
    np.testing.assert_allclose(panns.embed([wave], sample_rate=22050),
                               panns.embed([audio.resample(wave, 22050, 16000)]), rtol=1e-5, atol=1e-6)


def test_random_weights_are_fixed_by_the_seed(tiny_sections):
    a = build_extractor("wav2clip", tiny_sections["wav2clip"])
    b = build_extractor("wav2clip", tiny_sections["wav2clip"])
    c = build_extractor("wav2clip", {**tiny_sections["wav2clip"], "seed": 1})
    wave = [tone_clip(4)]
    assert a.model_id == b.model_id != c.model_id
    np.testing.assert_array_equal(a.embed(wave), b.embed(wave))
    assert not np.allclose(a.embed(wave), c.embed(wave))


def test_tiny_extractors_take_well_under_a_second_per_clip(tiny_extractors, clips):
    import time

    # CPU time of one thread, so a busy shared machine does not make the number wall-clock noise.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        per_clip = 0.0
        for ext in tiny_extractors.values():
            ext.embed(clips[:1])  # first-call allocations are not what we measure
            start = time.process_time()
            ext.embed(clips)
            per_clip += (time.process_time() - start) / len(clips)
    finally:
        torch.set_num_threads(threads)
    # All three extractors together, per 10 s clip (about 0.1 s on one core when measured).
    assert per_clip < 1.0


def test_paper_arch_cnn14_has_the_published_parameter_count():
    panns = build_extractor("panns", profile_extractors("paper-arch")["panns"])
    # PANNs reports 80.8 M for Cnn14; the frozen STFT / mel matrices are not counted.
    assert _count(panns.model) == pytest.approx(80.8e6, rel=0.01)
    assert panns.embedding_dim == 2048 and panns.num_classes == 527


def test_paper_arch_vggish_has_the_published_parameter_count():
    vgg = build_extractor("vggish", profile_extractors("paper-arch")["vggish"])
    # 4.50 M conv + 12288*4096 + 4096*4096 + 4096*128 fc weights and biases = 72.14 M.
    assert _count(vgg.model) == pytest.approx(72.14e6, rel=0.01)
    assert vgg.model.embeddings[0].in_features == 12288


def test_paper_arch_wav2clip_is_a_resnet18_with_a_512d_projection():
    w2c = build_extractor("wav2clip", profile_extractors("paper-arch")["wav2clip"])
    # torchvision's ResNet-18 has 11,689,512 parameters; one input channel removes 2 * 64 * 7 * 7 and
    # the unused 1000-way head 512 * 1000 + 1000.
    assert _count(w2c.model.encoder) == 11_689_512 - 2 * 64 * 49 - 513_000
    assert w2c.embedding_dim == 512


def test_state_dict_keys_follow_the_official_checkpoints(tiny_extractors):
    panns_keys = set(tiny_extractors["panns"].model.state_dict())
    assert {"spectrogram_extractor.stft.conv_real.weight", "logmel_extractor.melW", "bn0.running_mean",
            "conv_block6.conv2.weight", "fc1.weight", "fc_audioset.bias"} <= panns_keys
    vgg_keys = set(tiny_extractors["vggish"].model.state_dict())
    assert {"features.0.weight", "features.13.weight", "embeddings.0.weight", "embeddings.4.bias"} <= vgg_keys
    w2c_keys = set(tiny_extractors["wav2clip"].model.state_dict())
    assert {"encoder.spectrogram.window", "encoder.layer4.1.bn2.weight", "transform.sequential.3.weight"} <= w2c_keys


@pytest.mark.parametrize("name", ["panns", "vggish", "wav2clip"])
def test_paper_profile_without_a_checkpoint_fails_at_build_naming_the_field(name):
    with pytest.raises(MissingCheckpointError, match=rf"extractors\.{name}\.checkpoint"):
        build_extractor(name, profile_extractors("paper")[name])


def test_a_checkpoint_path_that_does_not_exist_is_named_in_the_error(tmp_path):
    section = {**profile_extractors("paper")["vggish"], "checkpoint": str(tmp_path / "nope.pth")}
    with pytest.raises(MissingCheckpointError, match="nope.pth"):
        build_extractor("vggish", section)


def test_unknown_section_fields_are_rejected_by_name(tiny_sections):
    with pytest.raises(ExtractorConfigError, match="hop_sise"):
        build_extractor("panns", {**tiny_sections["panns"], "hop_sise": 160})
    with pytest.raises(ExtractorConfigError, match="accepted"):
        build_extractors({"clap": {}})


def test_panns_training_checkpoint_with_numpy_sampler_state_loads(tmp_path, tiny_sections):
    src = build_extractor("panns", {**tiny_sections["panns"], "seed": 7})
    ckpt = tmp_path / "Cnn14_16k_mAP=0.438.pth"
    torch.save({"iteration": 3, "model": src.model.state_dict(),
                "sampler": {"indexes": np.arange(10), "random_state": np.random.RandomState(0).get_state()}}, ckpt)
    loaded = build_extractor("panns", {**tiny_sections["panns"], "pretrained": True, "checkpoint": str(ckpt)})
    wave = [tone_clip(5)]
    np.testing.assert_allclose(loaded.embed(wave), src.embed(wave), rtol=1e-6)
    assert "Cnn14_16k_mAP=0.438.pth" in loaded.model_id


def test_vggish_port_state_dict_loads_from_safetensors_ignoring_pca(tmp_path, tiny_sections):
    src = build_extractor("vggish", {**tiny_sections["vggish"], "seed": 3})
    state = {**src.model.state_dict(), "pproc._pca_means": torch.zeros(128, 1)}
    ckpt = tmp_path / "vggish.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(ckpt))
    loaded = build_extractor("vggish", {**tiny_sections["vggish"], "pretrained": True, "checkpoint": str(ckpt)})
    wave = [tone_clip(6)]
    np.testing.assert_allclose(loaded.embed(wave)[0], src.embed(wave)[0], rtol=1e-6)


def test_wav2clip_lightning_checkpoint_keys_are_mapped(tmp_path, tiny_sections):
    src = build_extractor("wav2clip", {**tiny_sections["wav2clip"], "seed": 4})
    sd = src.model.state_dict()
    lightning = {"epoch": 10, "state_dict": {
        **{"audio_encoder." + k[len("encoder."):]: v for k, v in sd.items() if k.startswith("encoder.")},
        **{"audio_transform." + k[len("transform."):]: v for k, v in sd.items() if k.startswith("transform.")}}}
    lightning["state_dict"]["audio_encoder.fc.weight"] = torch.zeros(309, 64)  # unused VGGSound head
    lightning["state_dict"]["image_transform.sequential.0.weight"] = torch.zeros(4, 4)
    ckpt = tmp_path / "ResNet_CX.ckpt"
    torch.save(lightning, ckpt)
    loaded = build_extractor("wav2clip", {**tiny_sections["wav2clip"], "pretrained": True, "checkpoint": str(ckpt)})
    wave = [tone_clip(7)]
    np.testing.assert_allclose(loaded.embed(wave), src.embed(wave), rtol=1e-6)


def test_a_checkpoint_of_another_architecture_is_refused_with_the_mismatch(tmp_path, tiny_sections):
    from v2a.metrics.extractors import CheckpointFormatError

    ckpt = tmp_path / "small.pth"
    torch.save(build_extractor("vggish", tiny_sections["vggish"]).model.state_dict(), ckpt)
    section = {**profile_extractors("paper")["vggish"], "checkpoint": str(ckpt)}
    with pytest.raises(CheckpointFormatError, match="wrong shape"):
        build_extractor("vggish", section)


def test_vggish_mel_matrix_is_htk_triangles_without_the_dc_bin():
    mel = vggish_mel_matrix(16000, 257, 64, 125.0, 7500.0)
    assert mel.shape == (257, 64)
    assert np.all(mel[0] == 0) and mel.max() <= 1.0
    peaks = mel.argmax(axis=0)
    assert np.all(np.diff(peaks) >= 0) and peaks[0] * 16000 / 512 >= 100 and peaks[-1] * 16000 / 512 <= 7500


def test_vggish_log_mel_of_a_tone_peaks_at_its_band(tiny_extractors):
    t = np.arange(16000) / 16000
    patches = tiny_extractors["vggish"].log_mel_patches(np.sin(2 * np.pi * 1000 * t).astype(np.float32))
    assert tuple(patches.shape) == (1, 96, 64)
    mel = vggish_mel_matrix(16000, 257, 64, 125.0, 7500.0)
    assert int(patches[0].mean(0).argmax()) == int(mel[32].argmax())  # 1 kHz is FFT bin 32


def test_panns_front_end_is_the_hann_power_spectrogram_and_log_mel(tiny_extractors):
    import librosa

    model = tiny_extractors["panns"].model
    wave = torch.from_numpy(tone_clip(8, 1.0))[None]
    spec = model.spectrogram_extractor(wave)[0, 0]  # (frames, 257)
    ref = torch.stft(wave, 512, 160, 512, torch.hann_window(512), center=True, pad_mode="reflect",
                     return_complex=True).abs()[0].T ** 2
    torch.testing.assert_close(spec, ref, rtol=1e-3, atol=1e-4)
    mel = librosa.filters.mel(sr=16000, n_fft=512, n_mels=64, fmin=50, fmax=8000).T
    log_mel = model.logmel_extractor(spec[None, None])[0, 0]
    expected = 10 * torch.log10(torch.clamp(ref @ torch.from_numpy(mel), min=1e-10))
    torch.testing.assert_close(log_mel, expected, rtol=1e-3, atol=1e-2)


class _Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_a_checkpoint_with_arbitrary_objects_is_refused_without_unpickling_them(tmp_path, tiny_sections, capsys):
    from v2a.metrics.extractors import CheckpointFormatError

    ckpt = tmp_path / "evil.pth"
    torch.save({"model": {}, "extra": _Payload()}, ckpt)
    with pytest.raises(CheckpointFormatError, match="safetensors"):
        build_extractor("panns", {**tiny_sections["panns"], "pretrained": True, "checkpoint": str(ckpt)})
    assert "this must never run" not in capsys.readouterr().out
