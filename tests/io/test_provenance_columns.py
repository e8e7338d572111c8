"""The host and device columns: written by the stage writers, absent from older files (read as null),
and summed per host and device by `v2a status`."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from storage_schemas import embeddings as embeddings_schema
from storage_schemas import generations as generations_schema
from storage_schemas import provenance as provenance_schema
from v2a.tools import status
from v2a.io import embeddings as embeddings_io
from v2a.io import generations as generations_io
from v2a.io import parquet


def _block(ids, dim=4):
    n = len(ids)
    return embeddings_io.EmbeddingBlock(list(ids), ["video"] * n, np.ones((2 * n, dim), np.float32),
                                        np.arange(0, 2 * n + 1, 2, dtype=np.int64), np.ones((n, dim), np.float32),
                                        np.ones(n, bool), ["clip"] * n, ["clap"] * n)


def _generation_row(clip_id, sample=0, **where):
    return {"run_id": "r1", "clip_id": clip_id, "sample": sample, "uri": f"/x/{clip_id}__s{sample}.wav", "seed": 1,
            "conditioning": "mapper", "mapper_checkpoint_id": None, "mapper_kind": None, "aggregator": "mean",
            "mapper_guidance": None, "mapper_steps": None, "generator_id": "g", "generator_guidance": 2.5,
            "generator_steps": 2, "scheduler": "ddim", "seconds": 1.0, "sample_rate": 16000, "gen_time_s": 0.1,
            **where}


def _without_provenance(table: pa.Table) -> pa.Table:
    return table.drop_columns(list(provenance_schema.NAMES)).replace_schema_metadata(None)


def test_an_embeddings_shard_records_where_it_was_made_and_an_older_one_still_reads(tmp_path):
    emb = tmp_path / "embeddings"
    embeddings_io.write_embeddings(_block(["a", "b"]), str(emb / "shard-00000-x.parquet"),
                                   provenance={"host": "node1", "device": "cuda:3"})
    old = embeddings_io.block_to_table(_block(["c"]))
    pq.write_table(_without_provenance(old), emb / "shard-00001-y.parquet")  # as v2a wrote shards before

    assert pq.read_table(emb / "shard-00000-x.parquet", columns=["host", "device"]).to_pylist() == [
        {"host": "node1", "device": "cuda:3"}] * 2
    block = embeddings_io.read_block(str(emb))
    assert block.clip_ids == ["a", "b", "c"] and block.frames.shape == (6, 4)
    assert embeddings_schema.schema(4).field("host").nullable


def test_an_older_generations_table_reads_with_null_host_and_device(tmp_path):
    table = tmp_path / "generations" / "r1" / "table"
    table.mkdir(parents=True)
    older = pa.Table.from_pylist([_generation_row("a")], schema=pa.schema(
        [f for f in generations_schema.SCHEMA if f.name not in provenance_schema.NAMES]))
    pq.write_table(older, table / "part-old.parquet")
    generations_io.write_batch(str(tmp_path / "generations" / "r1"), [_generation_row("b", host="n2", device="cuda:1")],
                               "k")
    df = generations_io.read_generations(str(tmp_path / "generations" / "r1")).sort_values("clip_id")
    assert df["host"].isna().tolist() == [True, False] and df["device"].isna().tolist() == [True, False]
    assert (df["host"].iloc[1], df["device"].iloc[1]) == ("n2", "cuda:1")


def test_status_shows_how_rows_spread_over_hosts_and_devices(tmp_path):
    emb = tmp_path / "embeddings"
    embeddings_io.write_embeddings(_block(["a", "b"]), str(emb / "shard-00000-x.parquet"),
                                   provenance={"host": "node1", "device": "cuda:0"})
    embeddings_io.write_embeddings(_block(["c"]), str(emb / "shard-00001-y.parquet"),
                                   provenance={"host": "node2", "device": "cuda:1"})
    pq.write_table(_without_provenance(embeddings_io.block_to_table(_block(["d"]))), emb / "shard-00002-z.parquet")
    gen = tmp_path / "generations" / "r1"
    generations_io.write_batch(str(gen), [_generation_row("a", host="node1", device="cuda:0"),
                                          _generation_row("b", host="node1", device="cuda:1"),
                                          _generation_row("c", host="node1", device="cuda:1")], "k")

    found = status.out_status(str(tmp_path))
    spread = {(r["stage"], r["host"], r["device"]): r["rows"] for r in found["made_on"]}
    assert spread == {("embed", "node1", "cuda:0"): 2, ("embed", "node2", "cuda:1"): 1,
                      ("embed", "unknown", "unknown"): 1,
                      ("generate", "node1", "cuda:0"): 1, ("generate", "node1", "cuda:1"): 2}
    text = status.format_status(found)
    assert "where the rows were made" in text and "node2" in text and "cuda:1" in text
