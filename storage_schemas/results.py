"""`results`: long format, one row per metric, each row carrying the protocol that produced it."""

import pyarrow as pa

NAME = "results"
SCHEMA = pa.schema([
    pa.field("run_id", pa.string(), nullable=False),
    pa.field("created_at", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("dataset", pa.string(), nullable=False),
    pa.field("split", pa.string(), nullable=False),
    pa.field("n_clips", pa.int64(), nullable=False),
    pa.field("metric", pa.string(), nullable=False),       # fd | fad | cs | kl | is | gen_time_s | trainable_params_m
    pa.field("value", pa.float64(), nullable=False),
    pa.field("extractor", pa.string()),
    pa.field("sample_rate", pa.int32()),
    pa.field("clip_seconds", pa.float32()),
    pa.field("id_list_sha256", pa.string(), nullable=False),
    pa.field("mapper_checkpoint_id", pa.string()),
    pa.field("mapper_kind", pa.string()),
    pa.field("generator_id", pa.string()),
    pa.field("mapper_guidance", pa.float32()),
    pa.field("generator_guidance", pa.float32()),
    pa.field("mapper_steps", pa.int32()),
    pa.field("generator_steps", pa.int32()),
    pa.field("aggregator", pa.string()),
    pa.field("v2a_version", pa.string(), nullable=False),
])
