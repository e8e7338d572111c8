import numpy as np
import pytest
import torch


def noise(seconds, rate=16000, seed=0):
    return (np.random.default_rng(seed).standard_normal(int(seconds * rate)) * 0.1).astype(np.float32)


def test_audio_embeddings_are_l2_normalised_32d(tiny_clap):
    emb = tiny_clap.encode_audio([noise(10), noise(4, seed=1)], 16000)
    assert emb.shape == (2, 32) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert tiny_clap.sample_rate == 16000


def test_any_input_rate_is_accepted(tiny_clap):
    emb = tiny_clap.encode_audio([noise(2, rate=22050), noise(2, rate=48000)], 22050)
    assert emb.shape == (2, 32)


def test_preprocessing_is_audioldms_normalisation_at_48k(tiny_clap):
    wave = noise(10) + 0.3  # a DC offset and an arbitrary level
    prepared = tiny_clap.prepare_audio(wave, 16000)
    assert prepared.shape == (480000,)
    assert abs(float(prepared.mean())) < 1e-3  # mean removed
    assert 0.45 < float(prepared.abs().max()) < 0.55  # peak scaled to 0.5 (resampling ripples a little)


def test_short_audio_is_zero_padded_to_10_24_seconds_and_renormalised_as_audioldm_does(tiny_clap):
    assert tiny_clap.audio_preparer.padding == "audioldm"  # the default, AudioLDM's own path
    wave = noise(3)
    prepared = tiny_clap.prepare_audio(wave, 16000)
    assert prepared.shape == (480000,)
    # AudioLDM's read_wav_file: normalize_wav, zero-pad to 163,840 samples, 0.5 * x / max|x| again
    ref = wave - wave.mean()
    ref = ref / (np.abs(ref).max() + 1e-8) * 0.5
    ref = np.pad(ref, (0, 163840 - ref.size))
    ref = 0.5 * ref / np.abs(ref).max()
    from v2a.media.resample import resample

    expected = resample(torch.from_numpy(ref.astype(np.float32)), 16000, 48000)[:480000]
    torch.testing.assert_close(prepared, expected, atol=1e-6, rtol=0)
    assert float(prepared[3 * 48000 + 200:].abs().max()) < 1e-6  # zeros after the clip, not repeats


def test_repeat_padding_is_laion_claps_alternative(tiny_profile):
    from v2a.models import build_clap

    clap = build_clap({**tiny_profile["clap"], "audio": {**tiny_profile["clap"]["audio"], "padding": "repeat"}})
    prepared = clap.prepare_audio(noise(3), 16000)
    period = 3 * 48000
    assert prepared.shape == (480000,)
    torch.testing.assert_close(prepared[period:2 * period], prepared[:period])
    torch.testing.assert_close(prepared[2 * period:3 * period], prepared[:period])
    assert torch.count_nonzero(prepared[3 * period:]) == 0  # the remainder is zero-filled (laion 'repeatpad')
    assert "+pad-repeat" in clap.model_id  # embeddings of the two paths never share a cache key


def test_the_two_paddings_give_different_embeddings_for_short_clips(tiny_profile, tiny_clap):
    from v2a.models import build_clap

    repeat = build_clap({**tiny_profile["clap"], "audio": {**tiny_profile["clap"]["audio"], "padding": "repeat"}})
    wave = [noise(3, seed=2)]
    a, b = tiny_clap.encode_audio(wave, 16000), repeat.encode_audio(wave, 16000)
    assert float(np.sum(a * b)) < 0.9999
    assert tiny_clap.model_id != repeat.model_id


def test_silence_gives_a_finite_embedding(tiny_clap):
    prepared = tiny_clap.prepare_audio(np.zeros(16000 * 4, dtype=np.float32), 16000)
    assert torch.count_nonzero(prepared) == 0  # AudioLDM's second normalisation would give 0/0 = NaN
    emb = tiny_clap.encode_audio([np.zeros(16000 * 4, dtype=np.float32)], 16000)
    assert np.isfinite(emb).all()


def test_first_channel_is_kept_by_default_and_the_mean_on_request(tiny_profile, tiny_clap):
    from v2a.models import build_clap

    stereo = np.stack([noise(4, seed=1), noise(4, seed=2)])
    torch.testing.assert_close(tiny_clap.prepare_audio(stereo, 16000), tiny_clap.prepare_audio(stereo[0], 16000))
    mean = build_clap({**tiny_profile["clap"], "audio": {**tiny_profile["clap"]["audio"], "channel": "mean"}})
    torch.testing.assert_close(mean.prepare_audio(stereo, 16000), mean.prepare_audio(stereo.mean(0), 16000))


def test_unknown_padding_is_refused(tiny_profile):
    from v2a.models import build_clap

    with pytest.raises(ValueError, match="clap.audio.padding"):
        build_clap({**tiny_profile["clap"], "audio": {**tiny_profile["clap"]["audio"], "padding": "loop"}})


def test_embedding_does_not_depend_on_the_batch(tiny_clap):
    clips = [noise(10, seed=s) for s in range(3)]
    together = tiny_clap.encode_audio(clips, 16000)
    alone = tiny_clap.encode_audio(clips[1:2], 16000)
    np.testing.assert_allclose(together[1:2], alone, atol=1e-5)


def test_text_embeddings_come_from_the_text_tower(tiny_clap):
    emb = tiny_clap.encode_text(["a dog barking", ""])
    assert emb.shape == (2, 32)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(emb[0], emb[1])


def test_bad_waveforms_are_refused(tiny_clap):
    with pytest.raises(ValueError, match="mono"):
        tiny_clap.encode_audio([np.zeros((2, 3, 100), dtype=np.float32)], 16000)
    with pytest.raises(ValueError, match="empty"):
        tiny_clap.encode_audio([np.zeros(0, dtype=np.float32)], 16000)


def test_clap_weights_load_from_an_audioldm_checkpoint(tmp_path, tiny_profile, tiny_clap):
    from v2a.models import build_clap

    sd = {f"cond_stage_model.model.{k}": v for k, v in tiny_clap.net.state_dict().items()}
    sd["cond_stage_model.model.text_branch.embeddings.position_ids"] = torch.arange(80)[None]
    sd["model.diffusion_model.conv_in.weight"] = torch.zeros(3)  # the rest of AudioLDM is ignored
    path = tmp_path / "audioldm-tiny.ckpt"
    torch.save({"state_dict": sd}, path)
    loaded = build_clap({**tiny_profile["clap"], "weights": str(path), "seed": 123})
    wave = [noise(5)]
    np.testing.assert_allclose(loaded.encode_audio(wave, 16000), tiny_clap.encode_audio(wave, 16000), atol=1e-6)


def test_clap_weights_load_from_a_laion_checkpoint(tmp_path, tiny_profile, tiny_clap):
    from safetensors.torch import save_file

    from v2a.models import build_clap

    path = tmp_path / "laion-tiny.safetensors"
    save_file({f"module.{k}": v.contiguous() for k, v in tiny_clap.net.state_dict().items()}, str(path))
    loaded = build_clap({**tiny_profile["clap"], "weights": str(path), "seed": 123})
    np.testing.assert_allclose(loaded.encode_text(["rain"]), tiny_clap.encode_text(["rain"]), atol=1e-6)


MARKER = {"ran": False}


def _would_run(marker_path):  # what a hostile checkpoint asks the unpickler to call
    MARKER["ran"] = True
    return marker_path


class Payload:  # an object whose unpickling would call _would_run
    def __reduce__(self):
        return (_would_run, ("/tmp/v2a-payload-ran",))


class SystemPayload:
    def __reduce__(self):
        import os

        return (os.system, ("true",))


def test_objects_pickled_beside_the_weights_are_never_run(tmp_path, tiny_profile, tiny_clap):
    from v2a.models import build_clap

    path = tmp_path / "hostile.pt"
    torch.save({"state_dict": tiny_clap.net.state_dict(), "extra": Payload()}, path)
    clap = build_clap({**tiny_profile["clap"], "weights": str(path)})  # the weights load ...
    assert MARKER["ran"] is False  # ... and the pickled call was replaced by an inert placeholder
    for name, tensor in tiny_clap.net.state_dict().items():
        assert torch.equal(clap.net.state_dict()[name], tensor), name


def test_a_checkpoint_that_calls_into_os_is_refused(tmp_path, tiny_profile, tiny_clap):
    from v2a.models import build_clap

    path = tmp_path / "evil.pt"
    torch.save({"state_dict": tiny_clap.net.state_dict(), "extra": SystemPayload()}, path)
    with pytest.raises(RuntimeError, match="weights_only"):
        build_clap({**tiny_profile["clap"], "weights": str(path)})


def test_a_checkpoint_of_another_architecture_is_refused(tmp_path, tiny_profile, tiny_clap):
    from v2a.models import build_clap

    path = tmp_path / "other.pt"
    sd = dict(tiny_clap.net.state_dict())
    sd.pop("logit_scale_a")
    torch.save(sd, path)
    with pytest.raises(RuntimeError, match="logit_scale_a"):
        build_clap({**tiny_profile["clap"], "weights": str(path)})


def test_clap_loads_from_an_audioldm_checkpoint_saved_as_safetensors(tmp_path, tiny_profile, tiny_clap):
    from safetensors.torch import save_file

    from v2a.models import build_clap

    # AudioLDM's layout: the CLAP under cond_stage_model.model., next to the diffusion model's weights
    sd = {f"cond_stage_model.model.{k}": v.contiguous() for k, v in tiny_clap.net.state_dict().items()}
    sd["model.diffusion_model.out.2.weight"] = torch.zeros(4)
    path = tmp_path / "audioldm-tiny.safetensors"
    save_file(sd, str(path))
    loaded = build_clap({**tiny_profile["clap"], "weights": str(path), "seed": 7})
    waves = [noise(4, seed=3), noise(10, seed=4)]
    np.testing.assert_allclose(loaded.encode_audio(waves, 16000), tiny_clap.encode_audio(waves, 16000), atol=1e-6)
    np.testing.assert_allclose(loaded.encode_text(["thunder", ""]), tiny_clap.encode_text(["thunder", ""]), atol=1e-6)


def test_bfloat16_autocast_keeps_the_embeddings_and_their_unit_norm(tiny_clap):
    # what dtype 'auto' does on CUDA; CPU autocast runs the same code path
    waves = [noise(10, seed=s) for s in range(3)]
    full = tiny_clap.encode_audio(waves, 16000)
    tiny_clap.autocast_dtype = torch.bfloat16
    try:
        mixed = tiny_clap.encode_audio(waves, 16000)
    finally:
        tiny_clap.autocast_dtype = None
    np.testing.assert_allclose(np.linalg.norm(mixed, axis=1), 1.0, atol=1e-5)
    assert np.min(np.sum(full * mixed, axis=1)) > 0.99


def test_prepared_audio_gives_the_same_embeddings_as_raw_waveforms(tiny_clap):
    waves = [noise(3, seed=5), noise(10, seed=6)]
    prepared = torch.stack([tiny_clap.prepare_audio(w, 16000) for w in waves])
    np.testing.assert_allclose(tiny_clap.encode_prepared(prepared), tiny_clap.encode_audio(waves, 16000), atol=1e-6)
