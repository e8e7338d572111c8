"""The `paper` profile needs real weights; offline it must fail at once, naming the field to set."""

import time

import pytest

from v2a.models import CheckpointNotFoundError, load_profile


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    import huggingface_hub.constants

    # an empty hub cache, whatever this machine has downloaded before
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub-cache"))
    # the libraries' own import time is not what is measured here
    import diffusers  # noqa: F401
    import open_clip  # noqa: F401


@pytest.mark.parametrize("component", ["clip", "clap", "generator"])
def test_paper_profile_offline_fails_fast_naming_the_checkpoint_field(component):
    from v2a.models import build_models

    start = time.perf_counter()
    with pytest.raises(CheckpointNotFoundError) as err:
        build_models("paper", components=(component,))
    assert time.perf_counter() - start < 5.0
    assert err.value.field == f"{component}.weights"
    assert f"`{component}.weights`" in str(err.value)


def test_a_missing_local_checkpoint_path_is_reported_as_such():
    from v2a.models import build_clip

    section = load_profile("paper", {"clip": {"weights": "/nowhere/clip.safetensors"}})["clip"]
    with pytest.raises(CheckpointNotFoundError, match="/nowhere/clip.safetensors"):
        build_clip(section)
