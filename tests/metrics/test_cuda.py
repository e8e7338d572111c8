"""The extractors and evaluate_audio on a GPU agree with the CPU (skipped where there is no CUDA)."""

import time

import numpy as np
import pytest
import torch

from tests.metrics.conftest import profile_extractors, tone_clip
from v2a.metrics.scores import evaluate_audio
from v2a.metrics.extractors import build_extractor, build_extractors

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _cosine_rows(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def _flat(out):
    return np.concatenate(out) if isinstance(out, list) else out


@pytest.mark.parametrize("profile", ["tiny", "paper-arch"])
@pytest.mark.parametrize("name", ["panns", "vggish", "wav2clip"])
def test_cuda_embeddings_match_cpu(profile, name):
    section = profile_extractors(profile)[name]
    cpu, gpu = build_extractor(name, section, "cpu"), build_extractor(name, section, "cuda")
    clips = [tone_clip(i, 10.0) for i in range(4)]
    a, b = _flat(cpu.embed(clips)), _flat(gpu.embed(clips))
    assert a.shape == b.shape
    # cuDNN may use TF32 convolutions, so compare directions rather than exact values.
    assert _cosine_rows(a, b).min() > 0.999
    if name == "panns":
        assert _cosine_rows(cpu.logits(clips), gpu.logits(clips)).min() > 0.999


def test_cuda_evaluate_audio_matches_cpu(tmp_path):
    sections = profile_extractors("tiny")
    ref = {f"c{i}": tone_clip(i, 2.0) for i in range(8)}
    gen = {f"c{i}": tone_clip(50 + i, 2.0) for i in range(8)}
    img = {k: np.random.default_rng(i).standard_normal((3, 32)).astype(np.float32) for i, k in enumerate(ref)}
    rows = {}
    for device in ("cpu", "cuda"):
        ext = build_extractors(sections, device)
        rows[device] = {r["metric"]: r["value"] for r in evaluate_audio(gen, ref, 16000, img, ext, clip_seconds=2.0,
                                                                        stats_dir=tmp_path / device, progress=False)}
    assert rows["cpu"].keys() == rows["cuda"].keys()
    for metric, value in rows["cpu"].items():
        assert rows["cuda"][metric] == pytest.approx(value, rel=0.05, abs=0.05), metric


def test_paper_arch_throughput_on_cuda_is_reported():
    clips = [tone_clip(i, 10.0) for i in range(64)]
    for name, section in profile_extractors("paper-arch").items():
        ext = build_extractor(name, {**section, "batch_size": 32}, "cuda")
        ext.embed(clips[:32])
        torch.cuda.synchronize()
        start = time.perf_counter()
        ext.embed(clips)
        torch.cuda.synchronize()
        rate = len(clips) / (time.perf_counter() - start)
        print(f"{name}: {rate:.1f} clips/s of 10 s on {torch.cuda.get_device_name()}")
        assert rate > 1
