"""`v2a map`: a mapper checkpoint applied to every row of an embeddings table → pseudo-CLAP rows."""

from __future__ import annotations

import numpy as np

from storage_schemas import mapped as mapped_schema
from v2a.core.seeds import derive_seed
from v2a.io import parquet
from v2a.io.pairs import load_pairs


def map_embeddings(checkpoint: str, embeddings_uri: str, out_uri: str, samples: int = 1,
                   guidance_scale: float | None = None, steps: int | None = None, seed: int = 0,
                   device: str = "cpu") -> int:
    from v2a.mapper.checkpoint import load_mapper

    mapper = load_mapper(checkpoint, device=device)
    aggregator = (mapper.config.get("aggregator") or "mean")
    pairs = load_pairs(embeddings_uri, aggregator, seed=seed)
    # Each clip's noise keyed by its id, as `v2a generate` keys it: a clip's samples do not depend on
    # the table's order or on which other clips are mapped with it, and match what generate conditions on.
    keys = [derive_seed(seed, cid, 0, "mapper") for cid in pairs.clip_ids]
    out = mapper.map(pairs.clip, samples=samples, seed=seed, guidance_scale=guidance_scale, steps=steps,
                     row_keys=keys)
    rows = [{"clip_id": cid, "sample": s, "audio_emb": out[i, s].tolist()}
            for i, cid in enumerate(pairs.clip_ids) for s in range(out.shape[1])]
    parquet.write_table(rows, out_uri, mapped_schema.SCHEMA, "mapped", sort_by="clip_id")
    return len(rows)
