"""`errors`: inputs a stage could not use, with a reason a person understands. They never stop a run."""

import pyarrow as pa

NAME = "errors"
SCHEMA = pa.schema([
    pa.field("clip_id", pa.string(), nullable=False),
    pa.field("stage", pa.string(), nullable=False),
    pa.field("uri", pa.string()),
    pa.field("reason", pa.string(), nullable=False),
])
