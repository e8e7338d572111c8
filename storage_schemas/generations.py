"""`generations`: one row per generated audio file, with every knob that produced it."""

import pyarrow as pa

from storage_schemas import provenance
from storage_schemas.validate import added_metadata

NAME = "generations"
SCHEMA = pa.schema([
    pa.field("run_id", pa.string(), nullable=False),
    pa.field("clip_id", pa.string(), nullable=False),
    pa.field("sample", pa.int32(), nullable=False),
    pa.field("uri", pa.string(), nullable=False),
    pa.field("seed", pa.int64(), nullable=False),
    pa.field("conditioning", pa.string(), nullable=False),  # mapper | no-mapper | text
    pa.field("mapper_checkpoint_id", pa.string()),
    pa.field("mapper_kind", pa.string()),
    pa.field("aggregator", pa.string()),
    pa.field("mapper_guidance", pa.float32()),
    pa.field("mapper_steps", pa.int32()),
    pa.field("generator_id", pa.string(), nullable=False),
    pa.field("generator_guidance", pa.float32(), nullable=False),
    pa.field("generator_steps", pa.int32(), nullable=False),
    pa.field("scheduler", pa.string(), nullable=False),
    pa.field("seconds", pa.float32(), nullable=False),
    pa.field("sample_rate", pa.int32(), nullable=False),
    pa.field("gen_time_s", pa.float32(), nullable=False),
    *provenance.FIELDS,                                     # host and device that generated the file
], metadata=added_metadata(*provenance.NAMES))
