"""`clips`: the manifest every later stage walks; one row per video clip or image."""

import pyarrow as pa

NAME = "clips"
SCHEMA = pa.schema([
    pa.field("clip_id", pa.string(), nullable=False),      # unique; '{youtube_id}_{start:06d}' for VGGSound
    pa.field("dataset", pa.string(), nullable=False),
    pa.field("split", pa.string(), nullable=False),        # train | test | val
    pa.field("label", pa.string()),
    pa.field("kind", pa.string(), nullable=False),         # video | image
    pa.field("uri", pa.string(), nullable=False),          # where the media file lives (path or fsspec URI)
    pa.field("youtube_id", pa.string()),
    pa.field("start_seconds", pa.int32()),
])
