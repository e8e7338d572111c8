"""`mapped`: pseudo-CLAP embeddings a mapper produced, one row per clip and sample."""

import pyarrow as pa

NAME = "mapped"
SCHEMA = pa.schema([
    pa.field("clip_id", pa.string(), nullable=False),
    pa.field("sample", pa.int32(), nullable=False),
    pa.field("audio_emb", pa.list_(pa.float32()), nullable=False),
])
