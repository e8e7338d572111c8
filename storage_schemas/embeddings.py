"""`embeddings`: cached per-frame CLIP and per-clip CLAP embeddings, the seam between encoding and training."""

import pyarrow as pa

NAME = "embeddings"
SCHEMA = pa.schema([
    pa.field("clip_id", pa.string(), nullable=False),
    pa.field("split", pa.string(), nullable=False),
    pa.field("label", pa.string()),
    pa.field("kind", pa.string(), nullable=False),
    # One CLIP vector per sampled frame (one entry for an image); aggregators run on these later.
    pa.field("image_frames", pa.list_(pa.list_(pa.float32())), nullable=False),
    pa.field("frame_times", pa.list_(pa.float32())),
    # CLAP audio embedding of the clip's real audio; null for images and videos without sound.
    pa.field("audio_emb", pa.list_(pa.float32())),
    pa.field("clip_model_id", pa.string(), nullable=False),
    pa.field("clap_model_id", pa.string(), nullable=False),
])
