"""The embedded default job: a synthetic audio-visual set and a tiny-profile pipeline config."""

from __future__ import annotations

from pathlib import Path

import yaml


def demo_config(out: Path, data: Path, seconds: float) -> dict:
    return {
        "out": str(out / "run"),
        "profile": "tiny",
        "data": {"csv": str(data / "vggsound.csv"), "videos": str(data / "videos"), "dataset": "synthetic"},
        "embed": {"num_frames": 4, "max_seconds": seconds, "shard_size": 16, "batch_size": 32},
        "train": {"mapper": "diff-mlp", "aggregator": "mean",
                  "epochs": 60, "batch_size": 32, "lr": 1e-3},
        "generate": {"split": "test", "samples": 1, "seconds": seconds, "steps": 20, "generator_guidance": 2.5,
                     "mapper_steps": 50, "batch_size": 6, "seed": 0},
        "evaluate": {"split": "test"},
    }


def prepare_demo(out: str | Path, seconds: float = 2.0, classes: int = 6, clips_per_class: int = 8,
                 seed: int = 0) -> tuple[str, str]:
    """Write the synthetic data (once) and the pipeline config; return (config path, run output)."""
    from v2a.tools.synth import make_synthetic_dataset

    out = Path(out).resolve()
    data = out / "data"
    if not (data / "vggsound.csv").exists():
        make_synthetic_dataset(data, classes=classes, clips_per_class=clips_per_class, seconds=seconds, seed=seed)
    config = demo_config(out, data, seconds)
    path = out / "pipeline.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return str(path), config["out"]
