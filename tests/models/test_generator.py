import numpy as np
import pytest


def conds(n, dim=32, seed=0):
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


FAST = dict(steps=3, seconds=1.0)


def test_waveform_has_seconds_times_16k_samples(tiny_generator):
    audio = tiny_generator.generate(conds(2), seeds=[0, 1], **FAST)
    assert audio.shape == (2, 16000) and audio.dtype == np.float32
    assert np.isfinite(audio).all() and np.abs(audio).max() > 0
    odd = tiny_generator.generate(conds(1), seeds=[0], steps=2, seconds=1.23)
    assert odd.shape == (1, 19680)


def test_latents_follow_audioldm_geometry(tiny_generator):
    assert tiny_generator.sample_rate == 16000 and tiny_generator.cond_dim == 32
    assert tiny_generator.mel_frames(10.0) == 1000  # hop 160 at 16 kHz
    assert tiny_generator.latent_shape(10.0) == (8, 250, 16)  # 8 channels, 64 mels / 4


def test_audioldm_sampler_samples_10_24_seconds_and_cuts(tiny_generator):
    assert tiny_generator.sampler == "audioldm"  # the default: AudioLDM's generate_sample
    assert tiny_generator.mel_frames(10.0, "audioldm") == 1024  # int(10 * 25.6) latent frames of 4
    assert tiny_generator.mel_frames(0.5, "audioldm") == tiny_generator.mel_frames(0.5)  # never too short
    audio = tiny_generator.generate(conds(1), seeds=[0], steps=2, seconds=2.0)
    assert audio.shape == (1, 32000)


def test_the_two_samplers_differ_and_diffusers_is_deterministic_ddim(tiny_generator):
    c = conds(1, seed=4)
    ours = tiny_generator.generate(c, seeds=[1], steps=4, seconds=2.0)
    pipeline = tiny_generator.generate(c, seeds=[1], steps=4, seconds=2.0, sampler="diffusers")
    no_eta = tiny_generator.generate(c, seeds=[1], steps=4, seconds=2.0, eta=0.0)
    assert not np.allclose(ours, pipeline)
    assert not np.allclose(ours, no_eta)  # eta alone changes the sample
    with pytest.raises(ValueError, match="sampler"):
        tiny_generator.generate(c, seeds=[1], steps=2, seconds=1.0, sampler="plms")
    with pytest.raises(ValueError, match="eta"):
        tiny_generator.generate(c, seeds=[1], steps=2, seconds=1.0, eta=-1.0)


def test_same_seed_gives_the_same_audio(tiny_generator):
    a = tiny_generator.generate(conds(1), seeds=[7], **FAST)
    b = tiny_generator.generate(conds(1), seeds=[7], **FAST)
    np.testing.assert_array_equal(a, b)


def test_different_seeds_give_different_audio(tiny_generator):
    c = conds(1)
    audio = tiny_generator.generate(np.repeat(c, 2, axis=0), seeds=[1, 2], **FAST)
    assert not np.allclose(audio[0], audio[1])


def test_an_item_sounds_the_same_alone_or_in_a_batch(tiny_generator):
    c = conds(3)
    batch = tiny_generator.generate(c, seeds=[10, 11, 12], **FAST)
    alone = tiny_generator.generate(c[1:2], seeds=[11], **FAST)
    scale = np.abs(alone).max()
    np.testing.assert_allclose(batch[1:2], alone, atol=1e-4 * scale, rtol=1e-3)


def test_condition_is_l2_normalised_inside(tiny_generator):
    c = conds(1)
    np.testing.assert_allclose(tiny_generator.generate(c * 5.0, seeds=[3], **FAST),
                               tiny_generator.generate(c, seeds=[3], **FAST), atol=1e-6)


def test_default_negative_is_the_text_embedding_of_the_empty_string(tiny_generator):
    neg = tiny_generator.encode_text([""])[0]
    assert neg.shape == (32,)
    np.testing.assert_allclose(tiny_generator.negative_embedding(), neg, atol=1e-6)
    c = conds(1)
    np.testing.assert_array_equal(tiny_generator.generate(c, seeds=[4], **FAST),
                                  tiny_generator.generate(c, seeds=[4], negative=neg, **FAST))
    other = tiny_generator.generate(c, seeds=[4], negative=conds(1, seed=9)[0], **FAST)
    assert not np.allclose(other, tiny_generator.generate(c, seeds=[4], **FAST))


def test_text_encoder_embeddings_are_l2_normalised(tiny_generator):
    emb = tiny_generator.encode_text(["a dog barking", "rain"])
    assert emb.shape == (2, 32)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("scheduler", ["ddim", "dpmsolver++"])
def test_both_schedulers_sample(tiny_generator, scheduler):
    audio = tiny_generator.generate(conds(1), seeds=[0], steps=4, seconds=0.5, scheduler=scheduler)
    assert audio.shape == (1, 8000) and np.isfinite(audio).all()


def test_guidance_scale_one_skips_the_unconditional_branch(tiny_generator):
    audio = tiny_generator.generate(conds(1), seeds=[0], guidance_scale=1.0, **FAST)
    assert audio.shape == (1, 16000)


def test_bad_arguments_are_refused(tiny_generator):
    with pytest.raises(ValueError, match="cond"):
        tiny_generator.generate(conds(1, dim=16), seeds=[0], **FAST)
    with pytest.raises(ValueError, match="seeds"):
        tiny_generator.generate(conds(2), seeds=[0], **FAST)
    with pytest.raises(ValueError, match="scheduler"):
        tiny_generator.generate(conds(1), seeds=[0], scheduler="euler", **FAST)


def _byte_level_roberta_tokenizer():
    from transformers import RobertaTokenizer

    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = [256 + i for i, _ in enumerate(b for b in range(256) if b not in printable)]
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for code in printable + extra:
        vocab[chr(code)] = len(vocab)
    vocab["<mask>"] = len(vocab)
    return RobertaTokenizer(vocab=vocab, merges=[], model_max_length=77)


def test_generator_loads_from_a_local_diffusers_directory(tmp_path, tiny_profile, tiny_generator):
    from diffusers import DDIMScheduler

    from v2a.models import build_generator

    for name in ("unet", "vae", "vocoder", "text_encoder"):
        getattr(tiny_generator, name).save_pretrained(tmp_path / name)
    DDIMScheduler.from_config(tiny_generator.scheduler_config).save_pretrained(tmp_path / "scheduler")
    _byte_level_roberta_tokenizer().save_pretrained(tmp_path / "tokenizer")

    loaded = build_generator({"model_id": "local-tiny", "weights": str(tmp_path)})
    assert loaded.encode_text(["rain"]).shape == (1, 32)
    c, neg = conds(1), tiny_generator.negative_embedding()
    np.testing.assert_allclose(loaded.generate(c, seeds=[5], negative=neg, **FAST),
                               tiny_generator.generate(c, seeds=[5], negative=neg, **FAST), atol=1e-6)


def _decoded_latents(generator, monkeypatch, runaway: float, sampler: str):
    """The latents handed to the decoder when every UNet prediction is scaled by `runaway`."""
    seen = []
    unet, decode = generator.unet, generator.decode

    class Loud:
        def __call__(self, *args, **kwargs):
            out = unet(*args, **kwargs)
            out.sample = out.sample * runaway
            return out

    def recording(latents, num_samples):
        seen.append(latents.clone())
        return decode(latents, num_samples)

    monkeypatch.setattr(generator, "unet", Loud())
    monkeypatch.setattr(generator, "decode", recording)
    generator.generate(conds(1), seeds=[0], steps=3, seconds=1.0, guidance_scale=1.0, sampler=sampler)
    monkeypatch.setattr(generator, "unet", unet)
    monkeypatch.setattr(generator, "decode", decode)
    return seen[0]


def test_runaway_latents_are_clamped_by_the_audioldm_sampler_only(tiny_generator, monkeypatch):
    """AudioLDM's generate_sample clips latents to [-10, 10] once their peak passes 100."""
    clamped = _decoded_latents(tiny_generator, monkeypatch, 1e4, "audioldm")
    assert float(clamped.abs().max()) == pytest.approx(10.0)
    unclamped = _decoded_latents(tiny_generator, monkeypatch, 1e4, "diffusers")  # diffusers' pipeline never clips
    assert float(unclamped.abs().max()) > 100
