"""The embeddings table as arrays: written from and read into contiguous float32 blocks, shard by shard.

A shard converts to an `EmbeddingBlock` in one step (Arrow fixed-size lists → numpy views), never
through per-row Python lists. Tables in the earlier layout (variable-length lists, with split and
label columns) are read the same way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from storage_schemas import SchemaError, validate
from storage_schemas import embeddings as embeddings_schema
from storage_schemas import provenance as provenance_schema
from v2a.core import storage
from v2a.io import clips as clips_io
from v2a.io import parquet
from v2a.io.layout import RunLayout

log = logging.getLogger(__name__)

VECTOR_COLUMNS = ("image_frames", "audio_emb")


@dataclass
class EmbeddingBlock:
    """Rows of the embeddings table as arrays: clip i's frames are frames[offsets[i]:offsets[i+1]]."""

    clip_ids: list[str]
    kinds: list[str]
    frames: np.ndarray          # (total frames, D) float32
    offsets: np.ndarray         # (N + 1,) int64
    audio: np.ndarray           # (N, D_audio) float32; rows without audio are zeros
    has_audio: np.ndarray       # (N,) bool
    clip_model_ids: list[str]
    clap_model_ids: list[str]
    frame_times: list | None = None

    def __len__(self) -> int:
        return len(self.clip_ids)

    def frames_of(self, i: int) -> np.ndarray:
        return self.frames[self.offsets[i]:self.offsets[i + 1]]

    def take(self, index) -> "EmbeddingBlock":
        index = np.asarray(index, dtype=np.int64)
        counts = np.diff(self.offsets)[index]
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        rows = [np.arange(self.offsets[i], self.offsets[i + 1]) for i in index]
        frames = self.frames[np.concatenate(rows)] if rows else self.frames[:0]
        pick = lambda xs: [xs[i] for i in index] if xs is not None else None  # noqa: E731
        return EmbeddingBlock(pick(self.clip_ids), pick(self.kinds), frames, offsets, self.audio[index],
                              self.has_audio[index], pick(self.clip_model_ids), pick(self.clap_model_ids),
                              pick(self.frame_times))

    def rows(self) -> list[dict]:
        """Per-clip dicts (clip_id, kind, image_frames as an (F, D) view, audio_emb or None) for small batches."""
        return [{"clip_id": c, "kind": k, "image_frames": self.frames_of(i),
                 "audio_emb": self.audio[i] if self.has_audio[i] else None,
                 "clip_model_id": self.clip_model_ids[i], "clap_model_id": self.clap_model_ids[i],
                 "frame_times": self.frame_times[i] if self.frame_times is not None else None}
                for i, (c, k) in enumerate(zip(self.clip_ids, self.kinds))]


def concat_blocks(blocks: list[EmbeddingBlock]) -> EmbeddingBlock:
    if not blocks:
        return EmbeddingBlock([], [], np.zeros((0, 0), np.float32), np.zeros(1, np.int64),
                              np.zeros((0, 0), np.float32), np.zeros(0, bool), [], [])
    if len(blocks) == 1:
        return blocks[0]
    offsets, total = [np.zeros(1, np.int64)], 0
    for b in blocks:
        offsets.append(b.offsets[1:] + total)
        total += int(b.offsets[-1])
    join = lambda name: [x for b in blocks for x in getattr(b, name)]  # noqa: E731
    times = join("frame_times") if all(b.frame_times is not None for b in blocks) else None
    return EmbeddingBlock(join("clip_ids"), join("kinds"), np.concatenate([b.frames for b in blocks]),
                          np.concatenate(offsets), np.concatenate([b.audio for b in blocks]),
                          np.concatenate([b.has_audio for b in blocks]), join("clip_model_ids"),
                          join("clap_model_ids"), times)


def _vectors(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray | None]:
    """A list<float32> column (fixed-size or not) → (N, D) float32 and a validity mask (None: all valid)."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    n = len(arr)
    valid = None if arr.null_count == 0 else ~np.asarray(arr.is_null().to_numpy(zero_copy_only=False))
    if pa.types.is_fixed_size_list(arr.type):
        dim = arr.type.list_size
        values = arr.values.to_numpy(zero_copy_only=False)
        start = arr.offset * dim
        out = values[start:start + n * dim].reshape(n, dim)
        return out.astype(np.float32, copy=False), valid
    # Legacy variable-length lists: every valid row must have the same width.
    lengths = pc_list_lengths(arr)
    widths = set(lengths[valid] if valid is not None else lengths) - {0}
    if len(widths) > 1:
        raise SchemaError(f"embedding vectors of different widths {sorted(widths)} in one column")
    dim = widths.pop() if widths else 0
    out = np.zeros((n, dim), np.float32)
    flat = arr.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    rows = np.flatnonzero(lengths == dim) if dim else np.zeros(0, np.int64)
    if dim and len(rows):
        out[rows] = flat.reshape(-1, dim)
    return out, valid


def pc_list_lengths(arr) -> np.ndarray:
    import pyarrow.compute as pc

    return pc.fill_null(pc.list_value_length(arr), 0).to_numpy(zero_copy_only=False)


def table_to_block(table: pa.Table, with_times: bool = False) -> EmbeddingBlock:
    n = table.num_rows
    frames_col = table.column("image_frames").combine_chunks()
    offsets = np.asarray(frames_col.offsets.to_numpy(zero_copy_only=False), dtype=np.int64)
    offsets = offsets - offsets[0]
    frames, _ = _vectors(frames_col.flatten())
    if "audio_emb" in table.column_names:
        audio, valid = _vectors(table.column("audio_emb"))
        has_audio = np.ones(n, bool) if valid is None else valid
        if valid is not None:
            audio = audio.copy()
            audio[~valid] = 0.0
    else:
        audio, has_audio = np.zeros((n, 0), np.float32), np.zeros(n, bool)
    col = lambda name: table.column(name).to_pylist() if name in table.column_names else [None] * n  # noqa: E731
    times = col("frame_times") if with_times else None
    return EmbeddingBlock(col("clip_id"), col("kind"), frames, offsets, audio, has_audio, col("clip_model_id"),
                          col("clap_model_id"), times)


def block_to_table(block: EmbeddingBlock, frame_times=None, provenance: dict | None = None) -> pa.Table:
    """The Arrow table of a block in the current schema (widths from the arrays); `provenance`: the host
    and device that encoded every row (storage_schemas/provenance.py), null when not given."""
    n = len(block)
    dim = block.frames.shape[1] if block.frames.ndim == 2 and block.frames.shape[1] else _audio_dim(block)
    audio_dim = block.audio.shape[1] if block.audio.ndim == 2 and block.audio.shape[1] else dim
    if dim != audio_dim:
        raise SchemaError(f"embeddings: CLIP width {dim} and CLAP width {audio_dim} differ; "
                          "the mapper needs both in one space size")
    frames = pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(block.frames, np.float32).ravel()), dim)
    image_frames = pa.ListArray.from_arrays(pa.array(block.offsets.astype(np.int32)), frames)
    audio_values = pa.array(np.ascontiguousarray(block.audio, np.float32).reshape(-1) if n else
                            np.zeros(0, np.float32))
    mask = pa.array(~np.asarray(block.has_audio, bool))
    audio = pa.FixedSizeListArray.from_arrays(audio_values, audio_dim, mask=mask)
    times = frame_times if frame_times is not None else block.frame_times
    schema = embeddings_schema.schema(dim)
    return pa.Table.from_arrays([
        pa.array(block.clip_ids, pa.string()), pa.array(block.kinds, pa.string()), image_frames,
        pa.array(times if times is not None else [None] * n, pa.list_(pa.float32())), audio,
        pa.array(block.clip_model_ids, pa.string()), pa.array(block.clap_model_ids, pa.string()),
        *[pa.array([(provenance or {}).get(name)] * n, pa.string()) for name in provenance_schema.NAMES],
    ], schema=schema)


def _audio_dim(block: EmbeddingBlock) -> int:
    return block.audio.shape[1] if block.audio.ndim == 2 else 0


def check_schema(schema: pa.Schema, where: str) -> None:
    """A shard in the current layout (any width) or the earlier one; anything else is refused by name."""
    if schema.get_field_index("image_frames") < 0:
        raise SchemaError(f"{where}: missing column(s) ['image_frames']; expected {embeddings_schema.SCHEMA.names}")
    inner = schema.field("image_frames").type
    if pa.types.is_list(inner) and pa.types.is_fixed_size_list(inner.value_type):
        # shards written before the provenance columns lack them: they read as null
        parquet.check_footer(schema, embeddings_schema.schema(inner.value_type.list_size), None, where)
    else:
        validate(schema.empty_table(), embeddings_schema.LEGACY_SCHEMA, where)


def write_embeddings(block: EmbeddingBlock, uri: str, frame_times=None, provenance: dict | None = None) -> pa.Table:
    table = block_to_table(block, frame_times, provenance)
    return parquet.write_table(table, uri, table.schema, "embeddings", sort_by="clip_id")


def iter_blocks(uri: str, ids=None, with_audio: bool = True, with_times: bool = False):
    """One EmbeddingBlock per shard of the table (only the rows of `ids` when given)."""
    if not parquet.table_files(uri):
        raise FileNotFoundError(f"no embeddings table at {uri} (a Parquet file or a folder of shards)")
    columns = ["clip_id", "kind", "image_frames", "clip_model_id", "clap_model_id"]
    if with_audio:
        columns.append("audio_emb")
    if with_times:
        columns.append("frame_times")
    tables = parquet.iter_tables(uri, None, "embeddings", columns=columns, ids=ids, check=check_schema)
    for table in parquet.prefetch(tables):
        yield table_to_block(table, with_times)


def read_block(uri: str, ids=None, with_audio: bool = True, with_times: bool = False) -> EmbeddingBlock:
    return concat_blocks(list(iter_blocks(uri, ids, with_audio, with_times)))


def embedded_ids(uri: str) -> list[str]:
    """Every clip id in the table (one string column read per shard)."""
    if not parquet.table_files(uri):
        return []
    out = []
    for table in parquet.iter_tables(uri, None, "embeddings", columns=["clip_id"], check=check_schema):
        out.extend(table.column("clip_id").to_pylist())
    return out


def legacy_splits(uri: str, ids=None) -> dict[str, str]:
    """split per clip as tables of the earlier layout stored it (used only when no clips table is at hand)."""
    out = {}
    for file_uri in parquet.table_files(uri):
        for table in parquet.iter_tables(file_uri, None, "embeddings", columns=None, ids=ids, check=check_schema,
                                         columns_if_present=["clip_id", "split"]):
            if "split" in table.column_names:
                out.update(zip(table.column("clip_id").to_pylist(), table.column("split").to_pylist()))
    return out


def exists(uri: str) -> bool:
    return storage.exists(uri) and bool(parquet.table_files(uri))


def read_embeddings(uri: str, split: str | None = None, clip_ids=None, clips_uri: str | None = None):
    """The embeddings table as a pandas DataFrame (small tables and tests; stages stream with
    `v2a.io.embeddings.iter_blocks`). `split` comes from the clips table (`clips_uri`, default the
    sibling `clips.parquet`), never from a copy that could be stale."""
    import pandas as pd

    ids = clip_ids
    if split is not None:
        wanted = set(split_ids(uri, split, clips_uri))
        ids = wanted if ids is None else wanted & set(ids)
    block = read_block(uri, ids=ids, with_times=True)
    df = pd.DataFrame({"clip_id": block.clip_ids, "kind": block.kinds,
                       "image_frames": [block.frames_of(i) for i in range(len(block))],
                       "frame_times": block.frame_times or [None] * len(block),
                       "audio_emb": [block.audio[i] if block.has_audio[i] else None for i in range(len(block))],
                       "clip_model_id": block.clip_model_ids, "clap_model_id": block.clap_model_ids})
    clips = clips_uri or sibling_clips(uri)
    sp = splits_of(uri, block.clip_ids, clips_uri) if split is not None or storage.exists(clips) else \
        legacy_splits(uri, ids=block.clip_ids)
    df.insert(1, "split", [sp.get(c) for c in block.clip_ids])
    labels = clips_io.labels(clips, ids=block.clip_ids) if storage.exists(clips) else {}
    df.insert(2, "label", [labels.get(c) for c in block.clip_ids])
    return df


def sibling_clips(embeddings_uri: str) -> str:
    """Where the clips table of an embeddings folder lives in the run layout (OUT/clips.parquet)."""
    parent = str(embeddings_uri).rstrip("/").rsplit("/", 1)[0]
    return RunLayout(parent).clips


def splits_of(uri: str, ids, clips_uri: str | None) -> dict[str, str]:
    """clip id -> split of the embedded clips: from the clips table (beside the embeddings unless given), else
    from the split column of embeddings written before the clips table held it."""
    clips = clips_uri or sibling_clips(uri)
    if storage.exists(clips):
        return clips_io.splits(clips, ids=ids)
    legacy = legacy_splits(uri, ids=ids)
    if not legacy:
        raise FileNotFoundError(f"no clips table at {clips} to read the clips' splits from "
                                "(pass the clips table of the run that wrote these embeddings)")
    log.warning("no clips table at %s: using the split stored in the embeddings table (older layout)", clips)
    return legacy


def split_ids(uri: str, split: str, clips_uri: str | None = None) -> list[str]:
    """Sorted ids of the clips of `split` that have embeddings (split read from the clips table)."""
    clips = clips_uri or sibling_clips(uri)
    embedded = embedded_ids(uri)
    if storage.exists(clips):
        in_split = set(clips_io.ids_in_split(clips, split))
        return sorted(c for c in embedded if c in in_split)
    sp = splits_of(uri, embedded, clips_uri)
    return sorted(c for c in embedded if sp.get(c) == split)
