"""`v2a check-models`: the CLAP text tower and the generator's text encoder must give one space."""

import copy

import numpy as np
import pytest
import torch

from flows.cli import main
from v2a.tools.check_models import ModelMismatchError, check_models, check_text_towers, generator_text_state_dict


@pytest.fixture(scope="module")
def towers():
    from v2a.runtime.model_cache import get_model

    return get_model("tiny", "clap"), get_model("tiny", "generator")


@pytest.fixture(scope="module")
def matched(towers):
    """The tiny generator with its text encoder replaced by the tiny CLAP's text tower (as AudioLDM ships it)."""
    clap, generator = towers
    twin = copy.copy(generator)
    twin.text_encoder = copy.deepcopy(generator.text_encoder)
    result = twin.text_encoder.load_state_dict(generator_text_state_dict(clap.net.state_dict()), strict=False)
    assert not [k for k in result.missing_keys if not k.endswith(("position_ids", "token_type_ids"))]
    assert not result.unexpected_keys
    twin._negative = None
    return twin


def test_matched_towers_pass(towers, matched):
    result = check_text_towers(towers[0], matched)
    assert result.ok and min(result.cosines) >= 0.999 and "agree" in result.message


def test_independent_towers_fail_with_a_message_about_the_spaces(towers):
    with pytest.raises(ModelMismatchError, match="target space is not the generator's conditioning space"):
        check_text_towers(*towers)


def test_a_slightly_different_tower_fails(towers, matched):
    nudged = copy.copy(matched)
    nudged.text_encoder = copy.deepcopy(matched.text_encoder)
    with torch.no_grad():
        for p in nudged.text_encoder.text_projection.parameters():
            p.add_(0.2 * torch.randn_like(p))
    with pytest.raises(ModelMismatchError, match="cosine"):
        check_text_towers(towers[0], nudged)


def test_different_widths_fail_before_any_text_is_encoded(towers):
    clap, generator = towers
    wider = copy.copy(generator)
    wider.cond_dim = clap.embed_dim * 2
    with pytest.raises(ModelMismatchError, match="-d"):
        check_text_towers(clap, wider)


def test_a_profile_without_a_generator_has_nothing_to_compare(tiny_profile_without_generator):
    assert check_models(tiny_profile_without_generator).ok


@pytest.fixture
def tiny_profile_without_generator():
    from v2a.models import load_profile

    prof = load_profile("tiny")
    prof["generator"] = {}
    return prof


def test_the_command_exits_with_the_reason_on_a_mismatch(capsys):
    assert main(["check-models", "--profile", "tiny"]) == 2
    assert "conditioning space" in capsys.readouterr().err


def test_generator_text_keys_are_the_diffusers_layout(towers):
    clap, generator = towers
    mapped = generator_text_state_dict(clap.net.state_dict())
    own = {k for k in generator.text_encoder.state_dict() if not k.endswith(("position_ids", "token_type_ids"))}
    assert set(mapped) == own
    np.testing.assert_array_equal(mapped["text_projection.linear1.weight"].numpy(),
                                  clap.net.state_dict()["text_projection.0.weight"].numpy())
