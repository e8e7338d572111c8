"""A run scored as a run (`evaluate_run`) and its audio scored as a folder (`evaluate_folder`) hand the
metrics the same waveforms under every channel rule: the mean-removing rules remove the DC offset on
both paths, `mean` keeps it on both."""

import numpy as np
import pytest

from v2a.io.audio import read_wave, write_wav
from v2a.io.embeddings import read_embeddings
from v2a.metrics.protocols import CHANNEL_RULES
from v2a.runtime.model_cache import empty_text_embedding, get_model
from v2a.stages import embed, evaluate, generate, ingest

RUN = "offset"
DC = 0.25


@pytest.fixture(scope="module")
def run(synth_dir, tmp_path_factory):
    """A run made by the real stages (no mapper), whose generated audio then gets a DC offset."""
    from storage_schemas import clips as clips_schema
    from v2a.io import parquet

    root = tmp_path_factory.mktemp("channel-rules")
    ingest.ingest(str(root / "clips.parquet"), csv=str(synth_dir / "vggsound.csv"), videos=str(synth_dir / "videos"),
                  dataset="synthetic")
    clips = parquet.read_table(str(root / "clips.parquet"), clips_schema.SCHEMA).to_pylist()
    clip_model, clap_model = get_model("tiny", "clip"), get_model("tiny", "clap")
    plans = embed.plan_shards([c["clip_id"] for c in clips], str(root / "embeddings"), str(root / "errors"), 16,
                              clip_model.model_id, clap_model.model_id, {"num_frames": 2})
    for plan in plans:
        embed.run_shard(plan, {c["clip_id"]: c for c in clips}, clip_model, clap_model, num_frames=2,
                        max_seconds=1.0, batch_size=16)
    rows = read_embeddings(str(root / "embeddings"), split="test").to_dict("records")
    generator = get_model("tiny", "generator")
    generate.generate_clips(rows, str(root / "generations" / RUN), RUN,
                            generate.Conditioner("no-mapper", generator, None), generator,
                            empty_text_embedding("tiny"), samples=1, seconds=1.0, steps=2, batch_size=4)
    audio_dir = root / "generations" / RUN / "audio"
    for wav in sorted(audio_dir.glob("*.wav")):
        wave, sr = read_wave(str(wav))
        write_wav(str(wav), 0.5 * wave + DC, sr)
    return root


class _Seen(Exception):
    """Raised by the stand-in for evaluate_audio once it has recorded its inputs: nothing is scored or written."""


def _metric_inputs(monkeypatch, call) -> dict:
    from v2a.metrics import scores

    seen = {}

    def record(generated, reference, sample_rate, *args, **kwargs):
        seen["generated"] = {k: np.asarray(generated[k]) for k in generated}
        seen["reference"] = {k: np.asarray(reference[k]) for k in reference} if reference else {}
        seen["rates"] = (sample_rate, kwargs.get("reference_sample_rate") or sample_rate)
        raise _Seen

    monkeypatch.setattr(scores, "evaluate_audio", record)
    with pytest.raises(_Seen):
        call()
    return seen


@pytest.mark.parametrize("rule", CHANNEL_RULES)
def test_the_run_path_and_the_folder_path_give_the_metrics_the_same_audio(run, tmp_path, monkeypatch, rule):
    gen_dir = run / "generations" / RUN
    by_run = _metric_inputs(monkeypatch, lambda: evaluate.evaluate_run(
        str(gen_dir), str(run), {}, metrics=["fd"], channel_rule=rule, clip_seconds=1.0))
    by_folder = _metric_inputs(monkeypatch, lambda: evaluate.evaluate_folder(
        str(gen_dir / "audio"), str(tmp_path / "results"), {}, run_dir=str(run), metrics=["fd"], channel_rule=rule,
        clip_seconds=1.0))
    assert by_run["rates"] == by_folder["rates"]
    assert sorted(by_run["generated"]) == sorted(by_folder["generated"]) and by_run["generated"]
    for k, wave in by_run["generated"].items():
        np.testing.assert_allclose(wave, by_folder["generated"][k], atol=1e-6, err_msg=f"{rule}: {k}")
        # What each rule does with the offset, so that agreeing cannot mean both paths ignore the rule.
        assert abs(wave.mean()) < 1e-4 if rule != "mean" else abs(wave.mean() - DC) < 0.05
    assert sorted(by_run["reference"]) == sorted(by_folder["reference"]) and by_run["reference"]
    for k, wave in by_run["reference"].items():
        np.testing.assert_allclose(wave, by_folder["reference"][k], atol=1e-6, err_msg=f"{rule}: reference {k}")
