"""The V2A mapper: CLIP image embedding -> pseudo CLAP audio embedding (paper section "Mapper").

Four mappers (Table 4): reg-mlp, reg-transformer, diff-mlp, diff-transformer (the best).
"""

from v2a.mapper.checkpoint import LoadedMapper, load_mapper, save_mapper
from v2a.mapper.factory import (ARCHS, DEFAULT_DEPTH, DEFAULT_EXPANSION, KINDS, MAPPER_NAMES, build_mapper,
                                count_trainable_params, mapper_name, parse_mapper_name)
from v2a.mapper.trainer import TrainConfig, train_mapper

__all__ = [
    "ARCHS", "DEFAULT_DEPTH", "DEFAULT_EXPANSION", "KINDS", "MAPPER_NAMES", "LoadedMapper", "TrainConfig",
    "build_mapper", "count_trainable_params", "load_mapper", "mapper_name", "parse_mapper_name", "save_mapper",
    "train_mapper",
]
