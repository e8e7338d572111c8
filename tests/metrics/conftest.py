from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

PROFILES = Path(__file__).resolve().parents[2] / "v2a" / "profiles"


def profile_extractors(name: str) -> dict:
    return yaml.safe_load((PROFILES / f"{name}.yaml").read_text())["extractors"]


def tone_clip(seed: int, seconds: float = 2.0, sr: int = 16000) -> np.ndarray:
    """A few decaying partials plus noise: real-looking spectra that differ from clip to clip."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    wave = sum(rng.uniform(0.05, 0.3) * np.sin(2 * np.pi * rng.uniform(80, 6000) * t + rng.uniform(0, 6))
               * np.exp(-t * rng.uniform(0, 2)) for _ in range(3))
    wave = wave + 0.02 * rng.standard_normal(t.shape)
    return wave.astype(np.float32)


@pytest.fixture(scope="session")
def tiny_sections() -> dict:
    return profile_extractors("tiny")


@pytest.fixture(scope="session")
def tiny_extractors(tiny_sections):
    from v2a.metrics.extractors import build_extractors

    return build_extractors(tiny_sections)
