"""`embeddings`: cached per-frame CLIP and per-clip CLAP embeddings, the seam between encoding and training.

Vectors are fixed-size float32 lists (the encoders' width, 512 for the paper's models), so a shard
converts to one contiguous (frames, D) array without per-row Python. `split` and `label` are not
stored: they belong to the clips table and are joined from it at read time, so re-splitting a clip
in the CSV is seen by every later stage without re-embedding.
"""

import pyarrow as pa

from storage_schemas import provenance
from storage_schemas.validate import added_metadata

NAME = "embeddings"
DIM = 512  # CLIP ViT-B/32 and CLAP HTSAT: the paper's width; profiles with other widths use schema(dim)


def schema(dim: int = DIM) -> pa.Schema:
    return pa.schema([
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        # One CLIP vector per sampled frame (one entry for an image); aggregators run on these later.
        pa.field("image_frames", pa.list_(pa.list_(pa.float32(), dim)), nullable=False),
        pa.field("frame_times", pa.list_(pa.float32())),
        # CLAP audio embedding of the clip's real audio; null for images and videos without sound.
        pa.field("audio_emb", pa.list_(pa.float32(), dim)),
        pa.field("clip_model_id", pa.string(), nullable=False),
        pa.field("clap_model_id", pa.string(), nullable=False),
        *provenance.FIELDS,  # host and device that encoded the shard; null in shards written before them
    ], metadata=added_metadata(*provenance.NAMES))


SCHEMA = schema(DIM)

# Tables written before v2a 0.3 hold variable-length lists and copies of split/label; they are still read.
LEGACY_SCHEMA = pa.schema([
    pa.field("clip_id", pa.string(), nullable=False),
    pa.field("split", pa.string(), nullable=False),
    pa.field("label", pa.string()),
    pa.field("kind", pa.string(), nullable=False),
    pa.field("image_frames", pa.list_(pa.list_(pa.float32())), nullable=False),
    pa.field("frame_times", pa.list_(pa.float32())),
    pa.field("audio_emb", pa.list_(pa.float32())),
    pa.field("clip_model_id", pa.string(), nullable=False),
    pa.field("clap_model_id", pa.string(), nullable=False),
])
