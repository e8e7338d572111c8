"""Building mappers: names, defaults, validation, input/output shapes."""

import pytest
import torch

from v2a.mapper import DEFAULT_DEPTH, MAPPER_NAMES, build_mapper, parse_mapper_name


@pytest.mark.parametrize("name,expected", [
    ("reg-mlp", ("regression", "mlp")), ("reg-transformer", ("regression", "transformer")),
    ("diff-mlp", ("diffusion", "mlp")), ("diff-transformer", ("diffusion", "transformer")),
    ("diffusion-transformer", ("diffusion", "transformer")),
])
def test_parse_mapper_name(name, expected):
    assert parse_mapper_name(name) == expected


@pytest.mark.parametrize("bad", ["diff", "gan-mlp", "reg-cnn", ""])
def test_parse_mapper_name_rejects_unknown_names_listing_accepted_ones(bad):
    with pytest.raises(ValueError, match="accepted: reg-mlp"):
        parse_mapper_name(bad)


def test_build_mapper_names_the_bad_field():
    with pytest.raises(ValueError, match=r"kind='prior'.*accepted: regression, diffusion"):
        build_mapper("prior", "mlp", dim=512)
    with pytest.raises(ValueError, match=r"arch='cnn'.*accepted: mlp, transformer"):
        build_mapper("regression", "cnn", dim=512)
    with pytest.raises(ValueError, match=r"depth=0"):
        build_mapper("regression", "mlp", dim=512, depth=0)
    with pytest.raises(ValueError, match=r"expansion=1.5"):
        build_mapper("regression", "mlp", dim=512, expansion=1.5)


def test_paper_default_depths():
    assert build_mapper("regression", "mlp", dim=512).depth == 1
    assert build_mapper("regression", "mlp", dim=512).expansion == 4
    assert build_mapper("diffusion", "mlp", dim=64).depth == 1
    assert build_mapper("regression", "transformer", dim=64, heads=2, head_dim=8).depth == 8
    assert build_mapper("diffusion", "transformer", dim=64, heads=2, head_dim=8).depth == 12
    assert set(DEFAULT_DEPTH) == {parse_mapper_name(n) for n in MAPPER_NAMES}


@pytest.mark.parametrize("arch", ["mlp", "transformer"])
def test_regression_maps_batch_of_visual_embeddings_to_audio_embeddings(arch):
    net = build_mapper("regression", arch, dim=32, depth=2, heads=2, head_dim=8)
    assert net(torch.randn(5, 32)).shape == (5, 32)


@pytest.mark.parametrize("arch", ["mlp", "transformer"])
def test_diffusion_network_maps_t_xt_cond_to_x0(arch):
    net = build_mapper("diffusion", arch, dim=32, depth=2, heads=2, head_dim=8, num_timesteps=50)
    t = torch.tensor([0, 10, 49])
    out = net(t, torch.randn(3, 32), torch.randn(3, 32))
    assert out.shape == (3, 32)
    assert net.null_cond.shape == (32,) and net.null_cond.requires_grad


def test_transformer_output_depends_on_which_slot_holds_which_input():
    # Noisy audio and visual condition are both 512-d vectors: the network must tell them apart.
    torch.manual_seed(0)
    net = build_mapper("diffusion", "transformer", dim=32, depth=1, heads=2, head_dim=8, num_timesteps=10)
    a, b, t = torch.randn(2, 32), torch.randn(2, 32), torch.tensor([3, 3])
    assert not torch.allclose(net(t, a, b), net(t, b, a))
