"""`scores`: the per-sample values that a results row averages (KL, CS, IB, DeSync, a `mean` kind), one row per
(metric, sample), so two runs can be compared clip by clip (`v2a compare`, a paired bootstrap).

Parts are keyed like the results parts, by (run, protocol, channel rule): a re-score of a metric replaces
its rows. Set statistics (Fréchet distances, Inception Score) have no per-sample value and no rows here.
A reference row (cs_reference) scores the real audio: its `sample_id` is the clip id.
"""

import pyarrow as pa

NAME = "scores"
SCHEMA = pa.schema([
    pa.field("run_id", pa.string(), nullable=False),
    pa.field("protocol", pa.string(), nullable=False),
    pa.field("channel_rule", pa.string(), nullable=False),
    pa.field("metric", pa.string(), nullable=False),
    pa.field("clip_id", pa.string(), nullable=False),
    pa.field("sample_id", pa.string(), nullable=False),
    pa.field("value", pa.float64(), nullable=False),
    pa.field("id_list_sha256", pa.string(), nullable=False),   # the clip set of the results row it belongs to
])
