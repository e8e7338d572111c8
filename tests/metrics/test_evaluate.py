import numpy as np
import pytest

from tests.metrics.conftest import tone_clip
from v2a.metrics.scores import clip_id_of_sample, clip_score, evaluate_audio, load_audio_folder
from v2a.metrics.specs import SPECS

SECONDS = 2.0


@pytest.fixture(scope="module")
def reference():
    return {f"vid{i}_000010": tone_clip(i, SECONDS) for i in range(6)}


@pytest.fixture(scope="module")
def generated():
    return {f"vid{i}_000010": tone_clip(100 + i, SECONDS) for i in range(6)}


@pytest.fixture(scope="module")
def images(reference):
    rng = np.random.default_rng(0)
    return {k: rng.standard_normal((3, 32)).astype(np.float32) for k in reference}


def _by_metric(rows):
    return {r["metric"]: r for r in rows}


def test_all_metrics_run_end_to_end_through_the_tiny_extractors(tmp_path, reference, generated, images,
                                                                tiny_extractors):
    rows = evaluate_audio(generated, reference, 16000, images, tiny_extractors, clip_seconds=SECONDS,
                          stats_dir=tmp_path, progress=False)
    got = _by_metric(rows)
    assert list(got) == ["fd", "fad", "cs", "cs_reference", "kl", "is", "fd_passt", "kl_passt", "is_passt"]
    for row in rows:
        assert set(row) == {"metric", "value", "extractor", "sample_rate", "clip_seconds", "n_clips", "ci_low",
                            "ci_high", "ci_resamples", "samples"}
        rate = 32000 if row["metric"].endswith("_passt") else 16000  # PaSST runs at 32 kHz
        assert np.isfinite(row["value"]) and row["sample_rate"] == rate and row["clip_seconds"] == SECONDS
        assert row["n_clips"] == 6
    assert got["fd"]["value"] > 0 and got["fad"]["value"] > 0 and got["is"]["value"] >= 1
    assert -100 <= got["cs"]["value"] <= 100
    assert got["fd"]["extractor"] == tiny_extractors["panns"].model_id
    assert got["fad"]["extractor"] == tiny_extractors["vggish"].model_id
    # Intervals follow the row's kind (v2a.metrics.specs.INTERVALS): Fréchet rows only on request.
    for name, row in got.items():
        if name.startswith("fd") or name == "fad":
            assert row["ci_low"] is None and row["ci_resamples"] is None and row["samples"] is None
        else:
            assert row["ci_resamples"] == 1000 and row["ci_low"] <= row["value"] <= row["ci_high"], name
            assert row["ci_low"] < row["ci_high"], name
        per_sample = SPECS[name].kind not in ("frechet", "inception") if name in SPECS else True
        assert (row["samples"] is not None) == per_sample, name
    assert got["kl"]["samples"]["sample_id"] == sorted(generated)
    assert np.mean(got["kl"]["samples"]["value"]) == pytest.approx(got["kl"]["value"], rel=1e-9)
    assert np.mean(got["cs"]["samples"]["value"]) == pytest.approx(got["cs"]["value"], rel=1e-9)
    assert got["cs_reference"]["samples"]["clip_id"] == sorted(reference)


def test_frechet_rows_get_an_interval_with_bootstrap_resamples(tmp_path, reference, generated, tiny_extractors):
    args = (generated, reference, 16000, None, tiny_extractors)
    plain = _by_metric(evaluate_audio(*args, clip_seconds=SECONDS, stats_dir=tmp_path, metrics=["fd", "fad"],
                                      progress=False))
    rows = _by_metric(evaluate_audio(*args, clip_seconds=SECONDS, stats_dir=tmp_path, metrics=["fd", "fad"],
                                     progress=False, bootstrap_resamples=40))
    for name in ("fd", "fad"):
        assert rows[name]["value"] == plain[name]["value"]  # the value itself never changes
        assert rows[name]["ci_resamples"] == 40 and rows[name]["ci_low"] < rows[name]["ci_high"]
        assert rows[name]["samples"] is None  # a set statistic: nothing per sample to store
    again = _by_metric(evaluate_audio(*args, clip_seconds=SECONDS, stats_dir=tmp_path, metrics=["fd"],
                                      progress=False, bootstrap_resamples=40))
    assert (again["fd"]["ci_low"], again["fd"]["ci_high"]) == (rows["fd"]["ci_low"], rows["fd"]["ci_high"])


def test_real_audio_scored_against_itself_gives_zero_distances(reference, tiny_extractors):
    rows = _by_metric(evaluate_audio(reference, reference, 16000, None, tiny_extractors, clip_seconds=SECONDS,
                                     progress=False))
    assert set(rows) == {"fd", "fad", "kl", "is", "fd_passt", "kl_passt", "is_passt"}
    assert rows["fd_passt"]["value"] == pytest.approx(0.0, abs=1e-4)
    assert rows["kl_passt"]["value"] == pytest.approx(0.0, abs=1e-3)
    assert rows["fd"]["value"] == pytest.approx(0.0, abs=1e-4)
    assert rows["fad"]["value"] == pytest.approx(0.0, abs=1e-4)
    assert rows["kl"]["value"] == pytest.approx(0.0, abs=1e-3)


def test_several_samples_per_clip_pair_with_their_clip(reference, images, tiny_extractors):
    gen = {f"{k}__s{s}": tone_clip(10 * i + s, SECONDS) for i, k in enumerate(reference) for s in range(2)}
    rows = _by_metric(evaluate_audio(gen, reference, 16000, images, tiny_extractors, clip_seconds=SECONDS,
                                     metrics=["kl", "cs"], progress=False))
    assert rows["kl"]["n_clips"] == 12 and rows["cs"]["n_clips"] == 12


def test_generated_audio_at_another_rate_is_resampled_to_each_extractors_rate(reference, generated,
                                                                              tiny_extractors):
    from v2a.metrics import audio

    at_22k = {k: audio.resample(v, 16000, 22050) for k, v in generated.items()}
    back = {k: audio.resample(v, 22050, 16000) for k, v in at_22k.items()}
    a = _by_metric(evaluate_audio(at_22k, reference, 22050, None, tiny_extractors, clip_seconds=SECONDS,
                                  metrics=["fd", "kl"], reference_sample_rate=16000, progress=False))
    b = _by_metric(evaluate_audio(back, reference, 16000, None, tiny_extractors, clip_seconds=SECONDS,
                                  metrics=["fd", "kl"], progress=False))
    assert a["fd"]["sample_rate"] == 16000
    assert a["fd"]["value"] == pytest.approx(b["fd"]["value"], rel=1e-6)
    assert a["kl"]["value"] == pytest.approx(b["kl"]["value"], rel=1e-6)


def test_clip_score_is_100_times_the_mean_frame_cosine():
    audio_emb = np.array([[1.0, 0.0], [0.0, 2.0]])
    frames = [np.array([[1.0, 0.0], [1.0, 1.0]]), np.array([0.0, -3.0])]
    expected = 100 * np.mean([np.mean([1.0, np.sqrt(0.5)]), -1.0])
    assert clip_score(audio_emb, frames) == pytest.approx(expected)


def test_clip_score_names_the_embed_dim_on_a_size_mismatch():
    with pytest.raises(ValueError, match="embed_dim"):
        clip_score(np.ones((1, 32)), [np.ones((1, 512))])


def test_a_metric_without_its_inputs_is_refused(generated, tiny_extractors):
    with pytest.raises(ValueError, match="reference"):
        evaluate_audio(generated, None, 16000, None, tiny_extractors, metrics=["fd"], progress=False)
    with pytest.raises(ValueError, match="image_embeddings"):
        evaluate_audio(generated, None, 16000, None, tiny_extractors, metrics=["cs"], progress=False)


def test_without_reference_only_reference_free_metrics_run(generated, images, tiny_extractors):
    rows = evaluate_audio(generated, None, 16000, images, tiny_extractors, clip_seconds=SECONDS, progress=False)
    assert [r["metric"] for r in rows] == ["cs", "is", "is_passt"]


def test_sample_suffix_is_stripped_to_find_the_clip():
    assert clip_id_of_sample("abc-_x_000030__s3") == "abc-_x_000030"
    assert clip_id_of_sample("abc_000030") == "abc_000030"


def test_load_audio_folder_reads_wav_and_flac_as_mono(tmp_path):
    sf = pytest.importorskip("soundfile")
    sf.write(tmp_path / "a.wav", np.zeros((800, 2), np.float32), 8000)
    sf.write(tmp_path / "b.flac", np.zeros(1600, np.float32), 16000)
    (tmp_path / "notes.txt").write_text("not audio")
    clips = load_audio_folder(tmp_path)
    assert sorted(clips) == ["a", "b"]
    assert clips["a"][0].shape == (800,) and clips["a"][1] == 8000
    resampled = load_audio_folder(tmp_path, target_sample_rate=16000)
    assert resampled["a"][0].shape == (1600,) and resampled["a"][1] == 16000


def test_a_single_reference_clip_still_gets_its_clip_score(images, tiny_extractors):
    ref = {"vid0_000010": tone_clip(0, SECONDS)}
    rows = _by_metric(evaluate_audio({"vid0_000010": tone_clip(1, SECONDS)}, ref, 16000, images, tiny_extractors,
                                     clip_seconds=SECONDS, metrics=["cs"], progress=False))
    assert rows["cs_reference"]["n_clips"] == 1


def test_the_kl_row_is_kl_softmax_of_generated_against_reference(reference, generated, tiny_extractors):
    """KL(reference || generated), as av-benchmark computes it: the arguments' order matters here, since
    the two directions differ on these clips."""
    from v2a.metrics import audio
    from v2a.metrics.classification import kl_softmax

    rows = _by_metric(evaluate_audio(generated, reference, 16000, None, tiny_extractors, clip_seconds=SECONDS,
                                     metrics=["kl"], progress=False))
    panns = tiny_extractors["panns"]
    ids = sorted(generated)

    def logits(waves):
        return panns.embed_and_logits([audio.prepare(waves[i], 16000, panns.sample_rate, SECONDS) for i in ids])[1]

    gen, ref = logits(generated), logits(reference)
    forward, backward = kl_softmax(gen, ref), kl_softmax(ref, gen)
    assert abs(forward - backward) > 1e-3 * abs(forward)  # the test could not tell a swap otherwise
    assert rows["kl"]["value"] == pytest.approx(forward, rel=1e-4)
