"""AudioLDM variants of paper Table 6, chosen as PROFILE:VARIANT; sizes checked without allocating weights."""

import pytest
import torch
from diffusers import UNet2DConditionModel

from v2a.models.profile import ProfileError, load_profile, profile_names


def _unet_params(profile: str) -> float:
    cfg = load_profile(profile)["generator"]["unet"]
    with torch.device("meta"):
        unet = UNet2DConditionModel(**cfg)
    return sum(p.numel() for p in unet.parameters()) / 1e6


@pytest.mark.parametrize("profile, millions", [("paper-arch:audioldm-s-v2", 185.04), ("paper-arch:audioldm-l", 739.14)])
def test_variant_unet_has_the_paper_size(profile, millions):
    assert _unet_params(profile) == pytest.approx(millions, rel=0.01)


def test_paper_variant_points_at_its_checkpoint():
    gen = load_profile("paper:audioldm-l", resolve_weights=False)["generator"]
    assert gen["weights"] == "audioldm-l-full" and gen["model_id"] == "cvssp/audioldm-l-full"
    from v2a.weights import get_entry

    assert get_entry("audioldm-l-full").source["hf"] == "cvssp/audioldm-l-full"  # the weights registry entry


def test_unknown_variant_names_the_accepted_ones():
    with pytest.raises(ProfileError, match="audioldm-s-v2"):
        load_profile("paper:audioldm-xl")


def test_the_variant_table_is_not_a_profile():
    assert "generators" not in profile_names()
