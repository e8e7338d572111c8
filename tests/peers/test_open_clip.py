"""Our CLIP path against open_clip's own model and PIL preprocessing, loaded from the hub-cache layout of
the `openai` ViT-B-32 weights (timm/vit_base_patch32_clip_224.openai, open_clip_model.safetensors)."""

import numpy as np
import pytest
import torch


def test_vit_b32_openai_layout_loads_and_matches_open_clip(tmp_path, monkeypatch):
    open_clip = pytest.importorskip("open_clip")
    import huggingface_hub.constants as hub_constants
    from PIL import Image
    from safetensors.torch import save_file

    from v2a.models import build_clip, load_profile

    torch.manual_seed(123)  # not the profile's seed: equal outputs need the file to have been loaded
    peer, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None, force_quick_gelu=True)
    peer.eval()
    # The file as `v2a weights fetch` leaves it: the open_clip hub file under its registry entry.
    monkeypatch.setenv("V2A_WEIGHTS_DIR", str(tmp_path / "weights"))
    entry = tmp_path / "weights" / "clip-vit-b-32-openai"
    entry.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in peer.state_dict().items()}, str(entry / "open_clip_model.safetensors"))
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    ours = build_clip({**load_profile("paper")["clip"], "dtype": "float32"})  # weights: clip-vit-b-32-openai
    frames = np.random.default_rng(1).integers(0, 256, size=(2, 180, 320, 3), dtype=np.uint8)
    with torch.no_grad():
        pixels = torch.stack([preprocess(Image.fromarray(f)) for f in frames])
        expected = torch.nn.functional.normalize(peer.encode_image(pixels), dim=-1).numpy()
    np.testing.assert_allclose(ours.encode_images(frames), expected, rtol=0, atol=1e-5)
    packed = ours.frame_preprocessor.pack(frames)  # the embed stage's worker path
    np.testing.assert_allclose(ours.encode_packed(packed), expected, rtol=0, atol=1e-5)
