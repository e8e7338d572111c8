"""Our windowed-sinc resampler gives torchaudio's numbers (AudioLDM resamples with torchaudio)."""

import numpy as np
import pytest
import torch

from v2a.media.resample import resample, resampler


@pytest.mark.parametrize("orig, new", [(44100, 16000), (16000, 48000), (48000, 16000), (22050, 16000), (8000, 16000)])
def test_matches_torchaudio(orig, new):
    ta = pytest.importorskip("torchaudio.transforms")
    wave = torch.from_numpy(np.random.default_rng(0).standard_normal(orig // 2 + 17).astype(np.float32))
    ours = resample(wave, orig, new)
    theirs = ta.Resample(orig, new)(wave)
    assert ours.shape == theirs.shape
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)


def test_batches_and_equal_rates_pass_through():
    wave = torch.randn(2, 3, 1000)
    assert resample(wave, 16000, 48000).shape == (2, 3, 3000)
    assert resample(wave, 16000, 16000) is wave


def test_one_kernel_per_rate_pair():
    assert resampler(44100, 16000) is resampler(44100, 16000)
