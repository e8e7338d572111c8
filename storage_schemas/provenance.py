"""`host` and `device`: where the rows of a part were made, columns of the embeddings, generations and
results tables. `device` names the physical device (`cuda:3` is GPU 3 of `host`, whatever the worker
process called it; `cpu`). Added after those tables' first release: older files read them as null,
which `v2a status` shows as `unknown`."""

import pyarrow as pa

FIELDS = [
    pa.field("host", pa.string()),      # the machine's host name
    pa.field("device", pa.string()),    # cpu | cuda:K (K: the GPU's id on that host) | mps
]
NAMES = tuple(f.name for f in FIELDS)
