"""Our generation loop against diffusers' AudioLDMPipeline on the same (tiny, random) components."""

import numpy as np
import pytest
import torch


@pytest.fixture(scope="module")
def generator():
    from v2a.models import build_generator, load_profile

    return build_generator(load_profile("tiny")["generator"], sampler="diffusers")


@pytest.fixture(scope="module")
def pipeline(generator):
    pytest.importorskip("diffusers.pipelines")
    from diffusers import AudioLDMPipeline

    pipe = AudioLDMPipeline(vae=generator.vae, text_encoder=generator.text_encoder, tokenizer=None,
                            unet=generator.unet, scheduler=generator.make_scheduler("ddim"), vocoder=generator.vocoder)
    # The comparisons below mean something only if the pipeline runs our modules themselves, not copies.
    for name in ("vae", "text_encoder", "unet", "vocoder"):
        assert getattr(pipe, name) is getattr(generator, name), name
    return pipe


def _conds(n, dim, seed=0):
    c = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return c / np.linalg.norm(c, axis=1, keepdims=True)


def _pipeline_audio(pipeline, generator, cond, seed, guidance, eta, scheduler):
    pipeline.scheduler = generator.make_scheduler(scheduler)
    neg = torch.from_numpy(generator.negative_embedding())[None].expand(len(cond), -1)
    out = pipeline(prompt_embeds=torch.from_numpy(cond), negative_prompt_embeds=neg if guidance > 1 else None,
                   num_inference_steps=4, guidance_scale=guidance, audio_length_in_s=1.0, eta=eta,
                   generator=torch.Generator().manual_seed(seed), output_type="pt")
    return out.audios.float().numpy()


@pytest.mark.parametrize("scheduler,guidance", [("ddim", 2.5), ("ddim", 1.0), ("dpmsolver++", 2.5)])
def test_deterministic_sampling_equals_the_pipeline(generator, pipeline, scheduler, guidance):
    cond = _conds(1, generator.cond_dim, seed=1)
    ours = generator.generate(cond, seeds=[5], steps=4, guidance_scale=guidance, seconds=1.0, scheduler=scheduler)
    theirs = _pipeline_audio(pipeline, generator, cond, 5, guidance, 0.0, scheduler)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5 * max(1.0, float(np.abs(theirs).max())))


def test_ddim_with_eta_one_equals_the_pipeline_at_batch_one(generator, pipeline):
    # AudioLDM's own sampler uses eta = 1; at batch 1 the pipeline's one generator draws the same
    # noise sequence as our per-item generator (initial latents, then one draw per step).
    cond = _conds(1, generator.cond_dim, seed=2)
    ours = generator.generate(cond, seeds=[9], steps=4, guidance_scale=2.5, seconds=1.0, eta=1.0)
    theirs = _pipeline_audio(pipeline, generator, cond, 9, 2.5, 1.0, "ddim")
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5 * max(1.0, float(np.abs(theirs).max())))


def test_a_hub_layout_folder_loads_in_both_and_they_agree(tmp_path, generator):
    """cvssp/audioldm-s-full-v2's layout: model_index.json naming each component folder's class."""
    import json

    from diffusers import AudioLDMPipeline, DDIMScheduler

    from tests.models.test_generator import _byte_level_roberta_tokenizer
    from v2a.models import build_generator

    index = {"_class_name": "AudioLDMPipeline", "_diffusers_version": "0.15.0.dev0",
             "scheduler": ["diffusers", "DDIMScheduler"],
             "text_encoder": ["transformers", "ClapTextModelWithProjection"],
             "tokenizer": ["transformers", "RobertaTokenizerFast"],
             "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
             "vocoder": ["transformers", "SpeechT5HifiGan"]}
    (tmp_path / "model_index.json").write_text(json.dumps(index))
    for name in ("unet", "vae", "vocoder", "text_encoder"):
        getattr(generator, name).save_pretrained(tmp_path / name)
    DDIMScheduler.from_config(generator.scheduler_config).save_pretrained(tmp_path / "scheduler")
    _byte_level_roberta_tokenizer().save_pretrained(tmp_path / "tokenizer")

    ours = build_generator({"model_id": "hub-layout", "weights": str(tmp_path)}, sampler="diffusers")
    peer = AudioLDMPipeline.from_pretrained(str(tmp_path), local_files_only=True)
    cond = _conds(1, ours.cond_dim, seed=3)
    # the negative embedding from each side's own text tower and tokenizer: "" through RoBERTa's ids
    with torch.no_grad():
        neg = peer._encode_prompt([""], "cpu", 1, False)[0].float()
    np.testing.assert_allclose(ours.negative_embedding(), torch.nn.functional.normalize(neg, dim=-1).numpy(),
                               atol=1e-6)
    audio = ours.generate(cond, seeds=[2], steps=4, guidance_scale=2.5, seconds=1.0)
    theirs = peer(prompt_embeds=torch.from_numpy(cond), negative_prompt_embeds=torch.from_numpy(ours.negative_embedding())[None],
                  num_inference_steps=4, guidance_scale=2.5, audio_length_in_s=1.0,
                  generator=torch.Generator().manual_seed(2), output_type="pt").audios.float().numpy()
    np.testing.assert_allclose(audio, theirs, rtol=0, atol=1e-5 * max(1.0, float(np.abs(theirs).max())))
