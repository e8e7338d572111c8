import json

import numpy as np

from tests.metrics.conftest import tone_clip
from v2a.metrics.frechet import gaussian_stats
from v2a.metrics.reference_stats import id_list_sha256, reference_stats


class CountingExtractor:
    """Wraps an extractor and counts how often it is asked for features."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0
        self.name, self.sample_rate, self.model_id = inner.name, inner.sample_rate, inner.model_id
        if hasattr(inner, "embed_and_logits"):
            self.embed_and_logits = self._counted(inner.embed_and_logits)
        self.embed = self._counted(inner.embed)

    def _counted(self, fn):
        def wrapped(*args, **kwargs):
            self.calls += 1
            return fn(*args, **kwargs)
        return wrapped


def _reference(n=5):
    return {f"clip{i}": tone_clip(i, seconds=1.0) for i in range(n)}


def test_reference_stats_are_loaded_not_recomputed_on_the_second_call(tmp_path, tiny_extractors):
    ext = CountingExtractor(tiny_extractors["panns"])
    ref = _reference()
    first = reference_stats(ref, 16000, ext, clip_seconds=1.0, stats_dir=tmp_path, progress=False)
    calls = ext.calls
    second = reference_stats(ref, 16000, ext, clip_seconds=1.0, stats_dir=tmp_path, progress=False)
    assert first.computed and not second.computed
    assert ext.calls == calls
    np.testing.assert_array_equal(first.mu, second.mu)
    np.testing.assert_array_equal(first.sigma, second.sigma)
    np.testing.assert_array_equal(first.per_clip["logits"], second.per_clip["logits"])
    assert second.clip_ids == sorted(ref)


def test_cached_stats_do_not_read_the_reference_audio(tmp_path, tiny_extractors):
    ext = tiny_extractors["wav2clip"]
    ref = _reference()
    reference_stats(ref, 16000, ext, clip_seconds=1.0, stats_dir=tmp_path, progress=False)

    class Unreadable(dict):
        def __getitem__(self, key):
            raise AssertionError("audio was read although the statistics are cached")

    again = reference_stats(Unreadable(ref), 16000, ext, clip_seconds=1.0, stats_dir=tmp_path, progress=False)
    assert not again.computed


def test_another_id_set_or_clip_length_gets_its_own_stats(tmp_path, tiny_extractors):
    ext = tiny_extractors["panns"]
    ref = _reference()
    reference_stats(ref, 16000, ext, clip_seconds=1.0, stats_dir=tmp_path, progress=False)
    fewer = {k: v for k, v in ref.items() if k != "clip0"}
    assert reference_stats(fewer, 16000, ext, clip_seconds=1.0, stats_dir=tmp_path, progress=False).computed
    assert reference_stats(ref, 16000, ext, clip_seconds=0.5, stats_dir=tmp_path, progress=False).computed


def test_stored_key_names_the_protocol(tmp_path, tiny_extractors):
    ext = tiny_extractors["vggish"]
    ref = _reference(3)
    stats = reference_stats(ref, 16000, ext, clip_seconds=1.0, stats_dir=tmp_path, progress=False)
    meta = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert meta["key"] == {"extractor": ext.model_id, "sample_rate": 16000, "clip_seconds": 1.0,
                           "ids_sha256": id_list_sha256(ref), "format_version": 1}
    assert list(tmp_path.glob("*.safetensors"))
    # VGGish: one vector per 0.96 s frame of every clip (1 s clips -> 1 frame each).
    assert stats.n_vectors == 3 and stats.per_clip == {}


def test_vggish_stats_fit_all_frames_of_all_clips(tiny_extractors):
    ext = tiny_extractors["vggish"]
    ref = {f"c{i}": tone_clip(i, seconds=3.0) for i in range(3)}
    stats = reference_stats(ref, 16000, ext, clip_seconds=3.0, progress=False)
    frames = np.concatenate(ext.embed([ref[k] for k in sorted(ref)]))
    mu, sigma = gaussian_stats(frames)
    assert stats.n_vectors == frames.shape[0] == 9
    np.testing.assert_allclose(stats.mu, mu)
    np.testing.assert_allclose(stats.sigma, sigma)


def test_id_list_hash_ignores_order():
    assert id_list_sha256(["b", "a"]) == id_list_sha256(["a", "b"]) != id_list_sha256(["a"])


def test_stats_dir_may_be_any_fsspec_uri(tiny_extractors):
    import uuid

    ext = tiny_extractors["wav2clip"]
    uri = f"memory://v2a-test-{uuid.uuid4().hex}/stats"
    ref = _reference(3)
    assert reference_stats(ref, 16000, ext, clip_seconds=1.0, stats_dir=uri, progress=False).computed
    assert not reference_stats(ref, 16000, ext, clip_seconds=1.0, stats_dir=uri, progress=False).computed
