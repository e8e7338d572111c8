import numpy as np
import pytest

from v2a.metrics import audio


def test_resample_changes_the_length_by_the_rate_ratio_and_keeps_a_tone():
    sr = 48000
    t = np.arange(sr) / sr
    out = audio.resample(np.sin(2 * np.pi * 440 * t).astype(np.float32), sr, 16000)
    assert out.shape == (16000,) and out.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(out))
    assert int(spectrum.argmax()) == 440  # 1 s of audio: bin k is k Hz


def test_resample_at_the_same_rate_is_a_no_op():
    wave = np.random.default_rng(0).standard_normal(100).astype(np.float32)
    np.testing.assert_array_equal(audio.resample(wave, 16000, 16000), wave)


def test_fit_length_crops_long_and_zero_pads_short_clips():
    wave = np.ones(10, np.float32)
    np.testing.assert_array_equal(audio.fit_length(wave, 4), np.ones(4))
    np.testing.assert_array_equal(audio.fit_length(wave, 12), np.r_[np.ones(10), 0, 0])


def test_to_mono_averages_channels_in_either_layout():
    stereo = np.stack([np.ones(50), np.zeros(50)]).astype(np.float32)
    np.testing.assert_allclose(audio.to_mono(stereo), 0.5)
    np.testing.assert_allclose(audio.to_mono(stereo.T), 0.5)


def test_prepare_resamples_then_fits_the_clip_length():
    out = audio.prepare(np.zeros((2, 44100 * 3), np.float32), 44100, 16000, clip_seconds=2.0)
    assert out.shape == (32000,)


def test_resample_rejects_non_positive_rates():
    with pytest.raises(ValueError):
        audio.resample(np.zeros(4, np.float32), 0, 16000)
