"""Reading original AudioLDM checkpoints: no code from the file runs, EMA weights where present,
AudioLDM's attention heads (and a clear word when a diffusers folder has others)."""

from __future__ import annotations

import functools
import logging
import pathlib

import pytest
import torch

from v2a.models.audioldm_checkpoint import (ema_key, heads_mismatch, read_checkpoint, unet_heads,
                                            unet_state_dict)

S_WIDTHS = [128, 256, 384, 640]
S_BLOCKS = ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"]


def _touch(path):  # what a malicious pickle would run; the tests check that it never does
    pathlib.Path(path).write_text("ran")


class LightningHyperParameters:
    """A stand-in for what a Lightning checkpoint pickles beside its tensors (hyper-parameters,
    callback states): unpickling it calls ``_touch``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (_touch, (str(self.marker),))


def test_a_plain_state_dict_is_read_with_weights_only(tmp_path):
    path = tmp_path / "plain.ckpt"
    torch.save({"state_dict": {"a": torch.arange(3.0)}, "global_step": 7}, path)
    ckpt = read_checkpoint(path)
    assert list(ckpt.state_dict) == ["a"] and ckpt.stand_ins == []
    assert torch.equal(ckpt.state_dict["a"], torch.arange(3.0))


def test_objects_beside_the_tensors_are_read_as_inert_placeholders_and_never_run(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "lightning.ckpt"
    torch.save({"state_dict": {"w": torch.ones(2, 2)}, "hyper_parameters": LightningHyperParameters(marker),
                "callbacks": {"cb": functools.partial(_touch, str(marker))}}, path)
    with pytest.raises(Exception, match="Unsupported global"):  # what torch's weights-only reader alone says
        torch.load(path, weights_only=True)
    ckpt = read_checkpoint(path)
    assert torch.equal(ckpt.state_dict["w"], torch.ones(2, 2))
    assert any(name.endswith("_touch") for name in ckpt.stand_ins)
    assert "functools.partial" in ckpt.stand_ins
    assert not marker.exists()


def test_a_file_that_calls_into_os_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "marker"

    class Evil:
        def __reduce__(self):
            import os

            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"w": torch.ones(1)}, "x": Evil()}, path)
    with pytest.raises(RuntimeError, match="cannot be read with torch.load"):
        read_checkpoint(path)
    assert not marker.exists()


def _ldm_keys():
    return ["model.diffusion_model.input_blocks.0.0.weight", "model.diffusion_model.out.2.bias"]


def test_the_unet_comes_from_the_ema_copy_when_the_checkpoint_has_one():
    sd = {k: torch.zeros(2) for k in _ldm_keys()}
    sd.update({ema_key(k): torch.ones(2) for k in _ldm_keys()})
    assert ema_key(_ldm_keys()[0]) == "model_ema.diffusion_modelinput_blocks00weight"  # LitEma's naming
    unet, ema = unet_state_dict(sd)
    assert ema and all(torch.equal(v, torch.ones(2)) for v in unet.values())
    unet, ema = unet_state_dict(sd, use_ema=False)
    assert not ema and all(torch.equal(v, torch.zeros(2)) for v in unet.values())


def test_without_a_complete_ema_copy_the_trained_weights_are_used_and_it_says_so(caplog):
    sd = {k: torch.zeros(2) for k in _ldm_keys()}
    sd[ema_key(_ldm_keys()[0])] = torch.ones(2)
    with caplog.at_level(logging.WARNING):
        unet, ema = unet_state_dict(sd)
    assert not ema and torch.equal(unet["input_blocks.0.0.weight"], torch.zeros(2))
    assert "model_ema" in caplog.text


def test_a_diffusers_folder_with_8_heads_everywhere_is_reported():
    config = {"block_out_channels": S_WIDTHS, "attention_head_dim": 8, "down_block_types": S_BLOCKS}
    message = heads_mismatch(config)
    assert "[8, 8, 8]" in message and "[8, 12, 20]" in message and "attention_head_dim: [4, 8, 12, 20]" in message


@pytest.mark.parametrize("config", [
    {"block_out_channels": S_WIDTHS, "attention_head_dim": [4, 8, 12, 20], "down_block_types": S_BLOCKS},
    {"block_out_channels": [256, 512, 768, 1280], "attention_head_dim": [4, 8, 12, 20], "down_block_types": S_BLOCKS},
    {"block_out_channels": [16, 32, 32], "attention_head_dim": [1, 2, 2]},  # not an AudioLDM width: nothing to say
])
def test_audioldms_own_heads_are_not_reported(config):
    assert heads_mismatch(config) is None


def test_num_attention_heads_wins_over_the_legacy_name():
    assert unet_heads({"block_out_channels": [1, 2], "attention_head_dim": 8, "num_attention_heads": [3, 4]}) == [3, 4]


def test_a_diffusers_folder_gets_the_heads_the_profile_names(tmp_path):
    """The weights do not depend on the heads: generator.unet.attention_head_dim rebuilds the layout."""
    from v2a.models import build_generator, load_profile

    tiny = load_profile("tiny")["generator"]
    base = build_generator(tiny)
    for name in ("unet", "vae", "vocoder", "text_encoder"):
        getattr(base, name).save_pretrained(tmp_path / name)
    from diffusers import DDIMScheduler

    DDIMScheduler.from_config(base.scheduler_config).save_pretrained(tmp_path / "scheduler")
    section = {"model_id": "folder", "weights": str(tmp_path), "tokenizer": "bytes"}
    from tests.models.test_generator import _byte_level_roberta_tokenizer

    _byte_level_roberta_tokenizer().save_pretrained(tmp_path / "tokenizer")
    same = build_generator(section)
    other = build_generator({**section, "unet": {"attention_head_dim": [2, 4, 4]}})
    assert unet_heads(other.unet.config) == [2, 4, 4] and unet_heads(same.unet.config) == [1, 2, 2]
    x = torch.randn(1, 8, 8, 16, generator=torch.Generator().manual_seed(0))
    y = torch.nn.functional.normalize(torch.randn(1, base.cond_dim, generator=torch.Generator().manual_seed(1)), dim=-1)
    with torch.no_grad():
        eps = {name: g.unet(x, torch.tensor([500]), encoder_hidden_states=None, class_labels=y).sample
               for name, g in (("base", base), ("same", same), ("other", other))}
    peak = float(eps["base"].abs().max())
    assert float((eps["same"] - eps["base"]).abs().max()) <= 1e-6 * peak
    assert float((eps["other"] - eps["base"]).abs().max()) > 1e-3 * peak


def test_a_missing_ckpt_fails_at_once_naming_the_field(tmp_path):
    from v2a.models import CheckpointNotFoundError, build_generator

    with pytest.raises(CheckpointNotFoundError, match="generator.weights"):
        build_generator({"model_id": "x", "weights": str(tmp_path / "audioldm-s-full-v2.ckpt")})


def test_a_ckpt_that_is_not_audioldm_says_so(tmp_path):
    from v2a.models import build_generator

    path = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"encoder.weight": torch.ones(2)}}, path)
    with pytest.raises(RuntimeError, match="not an original AudioLDM checkpoint"):
        build_generator({"model_id": "x", "weights": str(path)})
