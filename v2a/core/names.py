"""The closed lists of names the configuration, the CLI and the library all choose from.

Kept in a module with no imports, so that validating a config file (at the CLI's edge, before
any model or Prefect code loads) does not pay for torch.
"""

# The paper's Table 4 rows: regression/diffusion objective × MLP/transformer network.
MAPPER_NAMES = ("reg-mlp", "reg-transformer", "diff-mlp", "diff-transformer")
# AudioLDM's samplers we expose.
SCHEDULERS = ("ddim", "dpmsolver++")
# What AudioLDM is conditioned on: the mapper's pseudo-CLAP, raw CLIP, or the label's CLAP text (Table 3).
CONDITIONINGS = ("mapper", "no-mapper", "text")
# The diffusion mapper's sampling as the paper found best: 200 of 1000 steps, guidance 0.9.
MAPPER_STEPS = 200
MAPPER_GUIDANCE = 0.9
# How the embed stage runs its decode workers: threads, processes, or chosen by the worker count.
POOLS = ("auto", "thread", "process")
