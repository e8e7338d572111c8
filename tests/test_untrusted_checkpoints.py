"""A checkpoint is data, never code: a pickle whose loading would run something is refused, and the
something never runs (it would create a marker file)."""

import pickle
from pathlib import Path

import pytest
import torch


class _Trap:
    """Unpickling this creates the marker file: proof that a loader ran the general unpickler."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _trap_checkpoint(path: Path, marker: Path, as_torch: bool) -> Path:
    payload = {"state_dict": {"w": torch.zeros(2)}, "trap": _Trap(marker)}
    if as_torch:
        torch.save(payload, path)  # a zip with a data.pkl, as torch.save writes
    else:
        path.write_bytes(pickle.dumps(payload))
    return path


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "UNPICKLED"
    yield path
    assert not path.exists(), "a checkpoint loader ran code from a pickle"


@pytest.mark.parametrize("as_torch", [True, False])
def test_a_mapper_checkpoint_holding_a_pickle_is_refused_and_never_run(tmp_path, marker, as_torch):
    from tests.mapper.test_checkpoint import _save
    from v2a.mapper import load_mapper

    out, _, _ = _save(tmp_path, "regression")
    _trap_checkpoint(out / "model.safetensors", marker, as_torch)
    with pytest.raises(ValueError, match="pickle|safetensors"):
        load_mapper(out)


@pytest.mark.parametrize("as_torch", [True, False])
def test_a_clap_checkpoint_holding_a_pickle_is_refused_and_never_run(tmp_path, marker, as_torch):
    from v2a.models import build_clap, load_profile

    path = _trap_checkpoint(tmp_path / "clap.pt", marker, as_torch)
    with pytest.raises(Exception, match="weights_only|pickle|cannot be read"):
        build_clap({**load_profile("tiny")["clap"], "weights": str(path)})


@pytest.mark.parametrize("as_torch", [True, False])
def test_an_extractor_checkpoint_holding_a_pickle_is_refused_and_never_run(tmp_path, marker, as_torch):
    from v2a.metrics.extractors._common import load_checkpoint

    path = _trap_checkpoint(tmp_path / "extractor.pth", marker, as_torch)
    with pytest.raises(Exception, match="weights_only|pickle|Unpickl"):
        load_checkpoint(path, "panns")
