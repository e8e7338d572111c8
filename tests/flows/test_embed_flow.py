"""The embed flow under Prefect: error count in its summary, the domain-gap pictures as an artifact."""

from prefect.artifacts import Artifact

from flows.naming import artifact_key, run_key

from storage_schemas import clips as clips_schema
from v2a.stages import ingest
from v2a.config import EmbedConfig
from v2a.io import parquet


def test_embed_flow_counts_errors_and_attaches_the_domain_gap_report(synth_dir, tmp_path, prefect_harness):
    from flows.embed import embed_flow

    out = tmp_path / "run"
    clips_uri = str(out / "clips.parquet")
    ingest.ingest(clips_uri, csv=str(synth_dir / "vggsound.csv"), videos=str(synth_dir / "videos"))
    clips = parquet.read_table(clips_uri, clips_schema.SCHEMA).to_pylist()[:5]
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video" * 50)
    clips.append({**clips[0], "clip_id": "broken", "uri": str(broken)})
    parquet.write_table(clips, clips_uri, clips_schema.SCHEMA, "clips")

    settings = EmbedConfig(num_frames=2, max_seconds=2.0, shard_size=3, workers=2)
    summary = embed_flow(str(out), profile="tiny", embed=settings)
    assert summary["rows"] == 5 and summary["errors_total"] == 1
    again = embed_flow(str(out), profile="tiny", embed=settings)
    assert again["errors_total"] == 1  # counted from the errors table, whatever this run did
    # The second run's shards came from the task cache: its log line and summary say nothing new was embedded.
    assert (again["rows"], again["errors"], again["skipped"]) == (0, 0, again["shards"])
    assert summary["rows_total"] == again["rows_total"] == 5  # what the table holds, new or not (the run summary)

    gap = summary["domain_gap"]
    assert gap is not None and gap["projection"] == "pca"
    assert (out / "reports" / "domain-gap-cosine.png").exists()
    artifact = Artifact.get(artifact_key("domain-gap", run_key(str(out))))  # OUT's name and digest
    assert artifact is not None and "domain-gap-projection.png" in artifact.data
    # The pictures are embedded: a bare path would be a broken image in the UI (its server has no such file).
    assert artifact.data.count("](data:image/png;base64,") == 2 and "](/" not in artifact.data
