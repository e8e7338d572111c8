"""`features`: each generated sample's inputs to the set statistics (Fréchet distances, Inception Score), kept on
request (`evaluate.keep_features`) so that `v2a compare` can recompute both runs' statistics on the same clip
resamples (a paired interval, `v2a.metrics.bootstrap.paired_set_replicates`).

One row per vector: a Fréchet metric stores the rows its Gaussian fit was computed from (one per sample, or one
per frame for VGGish, the sample's frames in order), an inception metric the sample's logits. Rows keep the
order the evaluation read them in, which Inception Score's fixed shuffle of splits depends on.

Parts are keyed like the scores parts, by (run, protocol, channel rule), and by the metric besides: each
extractor's metrics are scored by a task of their own, side by side, and each task writes its own parts
(the vectors are too large to travel back to the step that writes the scores). A re-score of a metric
replaces its part, or removes it when the features were not kept this time.
"""

import pyarrow as pa

NAME = "features"
SCHEMA = pa.schema([
    pa.field("run_id", pa.string(), nullable=False),
    pa.field("protocol", pa.string(), nullable=False),
    pa.field("channel_rule", pa.string(), nullable=False),
    pa.field("metric", pa.string(), nullable=False),
    pa.field("clip_id", pa.string(), nullable=False),
    pa.field("sample_id", pa.string(), nullable=False),
    pa.field("vector", pa.list_(pa.float32()), nullable=False),
    pa.field("id_list_sha256", pa.string(), nullable=False),   # the clip set of the results row it belongs to
    # A Fréchet row's reference statistics (the fit of the real audio the distance was taken to), where the
    # evaluation stored them (v2a.metrics.reference_stats); null for an inception row.
    pa.field("reference_stats", pa.string(), nullable=True),
])
