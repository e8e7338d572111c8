import numpy as np
import pytest


def frames(n, h=120, w=160, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def test_image_embeddings_are_l2_normalised_float32(tiny_clip):
    emb = tiny_clip.encode_images(frames(5))
    assert emb.shape == (5, 32) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def test_batching_does_not_change_embeddings(tiny_clip):
    f = frames(5)
    np.testing.assert_allclose(tiny_clip.encode_images(f, batch_size=2), tiny_clip.encode_images(f), atol=1e-5)


def test_preprocessing_resizes_shortest_side_and_center_crops(tiny_clip):
    pixels = tiny_clip.preprocess_frames(frames(2, h=90, w=300))
    assert tuple(pixels.shape) == (2, 3, tiny_clip.image_size, tiny_clip.image_size)
    # OpenAI mean/std normalisation: a mid-grey frame maps near zero
    grey = tiny_clip.preprocess_frames(np.full((1, 64, 64, 3), 120, dtype=np.uint8))
    assert float(grey.abs().max()) < 0.5


def test_text_embeddings_are_l2_normalised(tiny_clip):
    emb = tiny_clip.encode_text(["a dog barking", "rain on a roof", ""])
    assert emb.shape == (3, 32)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(emb[0], emb[1])


def test_frames_must_be_uint8_rgb(tiny_clip):
    with pytest.raises(ValueError, match="uint8"):
        tiny_clip.encode_images(np.zeros((1, 8, 8, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="RGB"):
        tiny_clip.encode_images(np.zeros((8, 8, 3), dtype=np.uint8))


def test_random_init_is_reproducible_and_recorded_in_the_id(tiny_profile, tiny_clip):
    from v2a.models import build_clip

    again = build_clip(tiny_profile["clip"])
    np.testing.assert_array_equal(again.encode_images(frames(2)), tiny_clip.encode_images(frames(2)))
    assert tiny_clip.model_id == "tiny-vit@random-seed0"


def test_weights_load_from_a_local_safetensors_file(tmp_path, tiny_profile, tiny_clip):
    from safetensors.torch import save_file

    from v2a.models import build_clip

    path = tmp_path / "clip.safetensors"
    save_file({k: v.contiguous() for k, v in tiny_clip.model.state_dict().items()}, str(path))
    loaded = build_clip({**tiny_profile["clip"], "weights": str(path), "seed": 7})
    np.testing.assert_allclose(loaded.encode_images(frames(2)), tiny_clip.encode_images(frames(2)), atol=1e-6)
    assert loaded.model_id == "tiny-vit@clip.safetensors"


def test_paper_arch_clip_is_vit_b_32_size():
    from v2a.models import build_clip, load_profile

    clip = build_clip(load_profile("paper-arch")["clip"])
    assert clip.embed_dim == 512 and clip.image_size == 224
    assert abs(clip.num_params / 1e6 - 151.3) < 0.5


def test_preprocessed_pixels_give_the_same_embeddings_as_frames(tiny_clip):
    f = frames(3)
    np.testing.assert_allclose(tiny_clip.encode_pixels(tiny_clip.preprocess_frames(f)), tiny_clip.encode_images(f),
                               atol=1e-6)


def test_packed_crops_normalised_later_are_the_same_pixels(tiny_clip):
    prep = tiny_clip.frame_preprocessor
    f = frames(3, h=90, w=160)
    packed = prep.pack(f)
    assert prep.splits and packed.dtype == np.uint8 and packed.shape == (3, 64, 64, 3)
    import torch

    assert torch.equal(prep.normalize(torch.from_numpy(packed)), tiny_clip.preprocess_frames(f))
    np.testing.assert_allclose(tiny_clip.encode_packed(packed), tiny_clip.encode_images(f), atol=1e-6)
