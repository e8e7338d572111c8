"""`results`: long format, one row per metric, each row carrying the protocol that produced it.

Columns added after the first release (the provenance block below) are nullable, and a results
file written before them reads with those columns null (v2a/io/parquet.py `read_table`).
Null means "does not apply" as well as "unknown": a reg-* mapper has no mapper guidance or steps.
"""

import pyarrow as pa

from storage_schemas import provenance
from storage_schemas.validate import added_metadata

NAME = "results"
_FIELDS = [
    pa.field("run_id", pa.string(), nullable=False),
    pa.field("created_at", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("dataset", pa.string(), nullable=False),
    pa.field("split", pa.string(), nullable=False),
    pa.field("n_clips", pa.int64(), nullable=False),       # clips scored
    pa.field("metric", pa.string(), nullable=False),       # a v2a.metrics.specs name | cs_reference | gen_time_s | trainable_params_m
    pa.field("value", pa.float64(), nullable=False),
    pa.field("extractor", pa.string()),
    pa.field("sample_rate", pa.int32()),
    pa.field("clip_seconds", pa.float32()),
    pa.field("id_list_sha256", pa.string(), nullable=False),
    pa.field("mapper_checkpoint_id", pa.string()),
    pa.field("mapper_kind", pa.string()),
    pa.field("generator_id", pa.string()),
    pa.field("mapper_guidance", pa.float32()),
    pa.field("generator_guidance", pa.float32()),
    pa.field("mapper_steps", pa.int32()),
    pa.field("generator_steps", pa.int32()),
    pa.field("aggregator", pa.string()),
    pa.field("v2a_version", pa.string(), nullable=False),
    # Provenance: enough to tell two rows' settings apart and to rerun one.
    pa.field("n_samples", pa.int64()),                     # generated samples scored (clips × samples per clip)
    pa.field("samples_per_clip", pa.int32()),
    pa.field("conditioning", pa.string()),                 # mapper | no-mapper | text
    pa.field("scheduler", pa.string()),
    pa.field("run_seed", pa.int64()),
    pa.field("profile", pa.string()),                      # model profile name (tiny, paper-arch, paper, a path)
    pa.field("config_digest", pa.string()),                # v2a.config.PipelineConfig.digest() of the run
    pa.field("git_commit", pa.string()),                   # of the v2a code that wrote the row, when in a git checkout
    pa.field("flow_run_id", pa.string()),                  # the Prefect flow run that wrote the row
    *provenance.FIELDS,                                    # host and device the extractors ran on
    # How the audio was scored (v2a/metrics/protocols.py): the preset and its channel rule.
    pa.field("protocol", pa.string()),                     # v2a-mapper | av-benchmark
    pa.field("channel_rule", pa.string()),                 # mean | channel0-minus-mean | av-benchmark
    # False: scored with `--allow-partial` while the generation set was unfinished (n_clips says how much);
    # null: the set's plan is unknown (a folder of audio, or a set generated before plans were recorded).
    pa.field("complete", pa.bool_()),
    # The 95 % percentile bootstrap interval over clips (v2a/metrics/bootstrap.py, fixed seed) and its resample
    # count; null: no interval (a Fréchet row scored without `--bootstrap N`, gen_time_s, a row written before).
    pa.field("ci_low", pa.float64()),
    pa.field("ci_high", pa.float64()),
    pa.field("ci_resamples", pa.int32()),
]

# The columns an older results file may lack; they read as nulls (the readers find them in the metadata).
ADDED = ("n_samples", "samples_per_clip", "conditioning", "scheduler", "run_seed", "profile", "config_digest",
         "git_commit", "flow_run_id", *provenance.NAMES, "protocol", "channel_rule", "complete", "ci_low", "ci_high", "ci_resamples")
SCHEMA = pa.schema(_FIELDS, metadata=added_metadata(*ADDED))
