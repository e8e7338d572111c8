"""Each score equals its formula on known inputs, computed here independently of v2a.metrics.

The formulas (av-benchmark's, see v2a/metrics/classification.py): KL_PaSST is KL(softmax(reference)
|| softmax(generated)) over paired clips; IS_PaSST is exp(mean_x KL(p(y|x) || p(y))) with p the
softmax of the generated logits; IB and CS are 100 x a mean cosine. The checks go through
`evaluate_audio` (the rows the evaluation writes) and the extractors' own outputs, so they hold
whichever module computes the score."""

import copy

import numpy as np
import pytest
import torch

from tests.metrics.conftest import tone_clip
from v2a.metrics import audio
from v2a.metrics.classification import kl_softmax
from v2a.metrics.scores import evaluate_audio

SECONDS = 2.0
RATE = 16000


@pytest.fixture(scope="module")
def clips():
    reference = {f"vid{i}_000010": tone_clip(i, SECONDS) for i in range(6)}
    generated = {f"vid{i}_000010": tone_clip(100 + i, SECONDS) for i in range(6)}
    return generated, reference


def _prepared(extractor, waves: dict, seconds=SECONDS, pad=True) -> list[np.ndarray]:
    return [audio.prepare(waves[k], RATE, extractor.sample_rate, seconds, pad) for k in sorted(waves)]


def _softmax(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _kl_rows(p: np.ndarray, q: np.ndarray) -> float:
    """Mean over rows of KL(p || q)."""
    return float(np.mean(np.sum(p * (np.log(p) - np.log(q)), axis=1)))


def _inception_score(p: np.ndarray) -> float:
    """exp(mean_x KL(p(y|x) || mean_x p(y|x))), one split."""
    return float(np.exp(_kl_rows(p, np.broadcast_to(p.mean(axis=0), p.shape))))


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.sum(a * b, axis=-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


@pytest.fixture(scope="module")
def passt(tiny_extractors, clips):
    """The tiny PaSST with its classifier re-scaled and centred on these clips.

    With random weights every clip gets nearly the same logits (a 0.002 spread): KL is ~1e-5 and IS 1
    whatever the formula, so a swapped KL or a sigmoid IS would pass. Scaling the last linear layer
    and moving its bias to these clips' mean feature leaves the architecture as it is and gives
    logits that differ from clip to clip, under which the formulas part."""
    extractor = copy.deepcopy(tiny_extractors["passt"])
    generated, reference = clips
    features = np.concatenate([extractor.embed_and_logits(_prepared(extractor, w))[0] for w in (generated, reference)])
    norm, linear = extractor.model.head
    with torch.no_grad():
        h = norm(torch.from_numpy(features)).double()
        spread = float((h - h.mean(0)).std())
        linear.weight.mul_(3.0 / (spread * float(linear.weight.std()) * linear.in_features ** 0.5))
        linear.bias.copy_(-(linear.weight.double() @ h.mean(0)).float())
    return extractor


def test_kl_passt_is_kl_of_the_reference_against_the_generated_passt_softmax(passt, clips):
    generated, reference = clips
    rows = evaluate_audio(generated, reference, RATE, None, {"passt": passt}, clip_seconds=SECONDS,
                          metrics=["kl_passt"], progress=False)
    gen = passt.embed_and_logits(_prepared(passt, generated))[1]
    ref = passt.embed_and_logits(_prepared(passt, reference))[1]
    expected, swapped = _kl_rows(_softmax(ref), _softmax(gen)), _kl_rows(_softmax(gen), _softmax(ref))
    assert abs(expected - swapped) > 0.05 * expected  # the inputs tell the two orders apart
    assert rows[0]["metric"] == "kl_passt" and rows[0]["n_clips"] == 6
    assert rows[0]["value"] == pytest.approx(expected, rel=1e-4)
    assert rows[0]["value"] == pytest.approx(kl_softmax(gen, ref), rel=1e-4)


def test_is_passt_is_the_inception_score_of_the_generated_passt_softmax(passt, clips):
    generated, _ = clips
    rows = evaluate_audio(generated, None, RATE, None, {"passt": passt}, clip_seconds=SECONDS,
                          metrics=["is_passt"], progress=False)
    logits = passt.embed_and_logits(_prepared(passt, generated))[1].astype(np.float64)
    expected = _inception_score(_softmax(logits))  # 6 samples: one split (fewer than torch-fidelity's 10)
    sigmoid = 1.0 / (1.0 + np.exp(-logits))
    on_sigmoid = _inception_score(sigmoid / sigmoid.sum(axis=1, keepdims=True))
    assert expected > 1.5 and abs(expected - on_sigmoid) > 0.5  # a sigmoid reading would score otherwise
    assert rows[0]["metric"] == "is_passt" and rows[0]["value"] == pytest.approx(expected, rel=1e-4)


def test_ib_score_is_100_times_the_mean_cosine_of_hand_made_embeddings():
    from v2a.metrics.extractors.imagebind import ib_score

    video = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 3.0]])
    sound = np.array([[2.0, 0.0, 0.0], [0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    # cosines 1, -1, 1/sqrt(2), 0
    assert ib_score(video, sound) == pytest.approx(100 * (1 - 1 + 2 ** -0.5 + 0) / 4)


def test_the_ib_row_is_100_times_the_mean_cosine_of_imagebinds_embeddings(tiny_extractors, clips):
    generated, _ = clips
    imagebind = tiny_extractors["imagebind"]
    rng = np.random.default_rng(0)
    frames = {k: rng.integers(0, 256, (2, 48, 64, 3), dtype=np.uint8) for k in generated}
    rows = evaluate_audio(generated, None, RATE, None, {"imagebind": imagebind}, clip_seconds=SECONDS,
                          metrics=["ib"], video_frames=frames, progress=False)
    sound = imagebind.embed(_prepared(imagebind, generated))
    video = imagebind.embed_frames([frames[k] for k in sorted(generated)])
    expected = 100 * float(np.mean(_cosines(video, sound)))
    assert abs(expected) > 1.0  # far enough from 0 that a missing factor of 100 shows
    assert rows[0]["metric"] == "ib" and rows[0]["value"] == pytest.approx(expected, rel=1e-4)


def test_the_cs_row_is_100_times_the_mean_frame_cosine_of_wav2clips_embeddings(tiny_extractors, clips):
    generated, _ = clips
    wav2clip = tiny_extractors["wav2clip"]
    sound = wav2clip.embed(_prepared(wav2clip, generated))
    rng = np.random.default_rng(1)
    # Frames leaning towards each clip's own embedding, so the mean cosine is well away from 0.
    images = {k: sound[i] + 0.5 * np.linalg.norm(sound[i]) * rng.standard_normal((3, sound.shape[1]))
              for i, k in enumerate(sorted(generated))}
    rows = evaluate_audio(generated, None, RATE, images, {"wav2clip": wav2clip}, clip_seconds=SECONDS,
                          metrics=["cs"], progress=False)
    expected = 100 * float(np.mean([_cosines(images[k], sound[i]).mean() for i, k in enumerate(sorted(generated))]))
    assert expected > 10
    assert rows[0]["metric"] == "cs" and rows[0]["value"] == pytest.approx(expected, rel=1e-4)


def test_prepare_cuts_a_short_clip_without_padding_and_pads_it_with():
    wave = np.linspace(-0.5, 0.5, 8000, dtype=np.float32)  # 0.5 s at 16 kHz, scored as 1-s clips
    cut = audio.prepare(wave, RATE, RATE, 1.0, pad=False)
    padded = audio.prepare(wave, RATE, RATE, 1.0, pad=True)
    np.testing.assert_array_equal(cut, wave)
    assert padded.shape == (16000,)
    np.testing.assert_array_equal(padded[:8000], wave)
    assert not padded[8000:].any()
    long = np.ones(24000, np.float32)  # longer than the clip: cut either way
    assert audio.prepare(long, RATE, RATE, 1.0, pad=False).shape == (16000,)
    assert audio.prepare(long, RATE, RATE, 1.0, pad=True).shape == (16000,)


def test_pad_false_reaches_the_extractor_as_the_short_clip_itself(tiny_extractors):
    """av-benchmark's reading (pad=False) scores a short clip's own samples, v2a's (pad=True) the clip zero-padded."""
    panns = tiny_extractors["panns"]
    short = {f"vid{i}_000010": tone_clip(200 + i, 0.5) for i in range(4)}
    rows = {pad: evaluate_audio(short, None, RATE, None, {"panns": panns}, clip_seconds=1.0, metrics=["is"],
                                pad=pad, progress=False)[0]["value"] for pad in (False, True)}
    assert abs(rows[False] - rows[True]) > 1e-3  # the two readings score apart
    for pad in (False, True):
        logits = panns.embed_and_logits(_prepared(panns, short, seconds=1.0, pad=pad))[1]
        assert rows[pad] == pytest.approx(_inception_score(_softmax(logits)), rel=1e-4)
    cut = panns.embed_and_logits([short[k] for k in sorted(short)])[1]
    assert rows[False] == pytest.approx(_inception_score(_softmax(cut)), rel=1e-4)
