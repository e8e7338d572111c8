import duckdb
import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from storage_schemas import conform
from storage_schemas import results as results_schema
from v2a.io import parquet
from v2a.stages.evaluate import evaluate_folder
from v2a.runtime.model_cache import get_model


def _tones(folder, freqs, sr=16000, seconds=1.0, suffix=""):
    folder.mkdir()
    t = np.arange(int(sr * seconds)) / sr
    for i, f in enumerate(freqs):
        sf.write(folder / f"clip{i}{suffix}.wav", 0.3 * np.sin(2 * np.pi * f * t), sr)


@pytest.fixture(scope="module")
def extractors():
    return {n: get_model("tiny", f"extractor:{n}") for n in ("panns", "vggish", "wav2clip")}


def test_any_folder_is_scored_against_a_reference_folder(tmp_path, extractors):
    _tones(tmp_path / "gen", [300, 500, 700, 900], suffix="__s0")
    _tones(tmp_path / "ref", [310, 520, 680, 950], sr=22050)  # another rate: resampled on read
    rows = evaluate_folder(str(tmp_path / "gen"), str(tmp_path / "results"), extractors,
                           reference_dir=str(tmp_path / "ref"), clip_seconds=1.0, run_id="other-system")
    assert {r["metric"] for r in rows} == {"fd", "fad", "kl", "is"}
    df = pd.read_parquet(tmp_path / "results")
    conform(df, results_schema.SCHEMA)
    fd = duckdb.sql(f"select value from '{tmp_path}/results/*.parquet' where metric='fd' and run_id='other-system'")
    assert fd.fetchall()[0][0] > 0


def test_a_folder_scored_against_itself_has_zero_fd(tmp_path, extractors):
    _tones(tmp_path / "gen", [300, 500, 700, 900])
    rows = evaluate_folder(str(tmp_path / "gen"), str(tmp_path / "results"), extractors,
                           reference_dir=str(tmp_path / "gen"), clip_seconds=1.0, metrics=("fd", "fad"))
    assert all(abs(r["value"]) < 1e-6 for r in rows)


def test_without_reference_or_images_nothing_can_be_computed(tmp_path, extractors):
    _tones(tmp_path / "gen", [300, 500])
    with pytest.raises(ValueError, match="nothing to compute"):
        evaluate_folder(str(tmp_path / "gen"), str(tmp_path / "results"), extractors, metrics=("fd", "cs"))


def test_evaluating_the_same_folder_twice_leaves_one_row_per_metric(tmp_path, extractors):
    _tones(tmp_path / "gen", [300, 500, 700], suffix="__s0")
    _tones(tmp_path / "ref", [310, 520, 680])
    for _ in range(2):
        evaluate_folder(str(tmp_path / "gen"), str(tmp_path / "results"), extractors,
                        reference_dir=str(tmp_path / "ref"), clip_seconds=1.0, run_id="twice", metrics=("fd", "kl"))
    df = pd.read_parquet(tmp_path / "results")
    assert sorted(df["metric"]) == ["fd", "kl"]  # a re-run replaces its rows, it does not add a second copy
