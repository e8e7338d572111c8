"""The domain-gap report (paper Fig. 3): paired cosine histogram and a joint 2-D projection, as PNGs."""

import numpy as np
import pytest
from PIL import Image

from storage_schemas import embeddings as embeddings_schema
from v2a.stages import domain_gap
from v2a.io import parquet


def unit_rows(n, dim=16, seed=0):
    x = np.random.default_rng(seed).standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_paired_cosine_is_row_by_row():
    a = unit_rows(5)
    np.testing.assert_allclose(domain_gap.paired_cosine(a, a), 1.0, atol=1e-6)
    np.testing.assert_allclose(domain_gap.paired_cosine(a, -a), -1.0, atol=1e-6)


def test_spaces_of_different_widths_are_refused():
    with pytest.raises(ValueError, match="widths differ"):
        domain_gap.paired_cosine(unit_rows(4, 16), unit_rows(4, 32))


def test_a_report_writes_a_histogram_and_a_projection(tmp_path):
    a = unit_rows(40, seed=1)
    b = unit_rows(40, seed=2) * 0.3 + a  # related but not equal
    report = domain_gap.gap_report(a, b, str(tmp_path), "gap", "test", ("A", "B"), method="pca")
    assert set(report.images) == {"cosine histogram", "2-D projection"}
    for uri in report.images.values():
        with Image.open(uri) as img:
            assert img.format == "PNG" and img.size[0] > 200
    assert report.cosine_paired["mean"] > report.cosine_shuffled["mean"]
    assert "| paired |" in report.markdown() and "gap-cosine.png" in report.markdown()


def test_mapped_equal_to_real_has_paired_cosine_one(tmp_path):
    real = unit_rows(30, seed=3)
    report = domain_gap.mapped_vs_real_report(real.copy(), real, str(tmp_path), method="pca")
    assert report.cosine_paired["mean"] == pytest.approx(1.0, abs=1e-6)
    assert report.cosine_shuffled["mean"] < 0.5  # shuffled pairs never pair a row with itself
    assert (tmp_path / "mapped-vs-real-projection.png").exists()


def test_small_sets_are_projected_with_pca_and_both_sets_share_one_fit():
    a, b = unit_rows(20, seed=4), unit_rows(20, seed=5)
    a2, b2, method = domain_gap.project_2d(a, b, "auto")
    assert method == "pca" and a2.shape == (20, 2) and b2.shape == (20, 2)
    _, b2_again, _ = domain_gap.project_2d(a, b, "pca")
    np.testing.assert_allclose(b2, b2_again, atol=1e-5)


def test_the_report_reads_the_embeddings_table(tmp_path):
    frames, audio = unit_rows(24, seed=6), unit_rows(8, seed=7)
    rows = [{"clip_id": f"c{i}", "split": "train", "label": "x", "kind": "video",
             "image_frames": frames[3 * i:3 * i + 3].tolist(), "frame_times": [0.5, 1.0, 1.5],
             "audio_emb": audio[i].tolist() if i < 7 else None, "clip_model_id": "m", "clap_model_id": "n"}
            for i in range(8)]
    uri = str(tmp_path / "embeddings" / "shard-00000.parquet")
    parquet.write_table(rows, uri, embeddings_schema.LEGACY_SCHEMA, "embeddings")
    report = domain_gap.domain_gap_report(str(tmp_path / "embeddings"), str(tmp_path / "reports"), method="pca")
    assert report.n == 7  # the clip without sound has no pair
    assert (tmp_path / "reports" / "domain-gap-cosine.png").exists()
    assert (tmp_path / "reports" / "domain-gap-projection.png").exists()
