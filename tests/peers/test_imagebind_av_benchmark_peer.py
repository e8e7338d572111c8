"""IB end to end, against av-benchmark's recipe built from ImageBind's own code on identical random weights.

Ours: `v2a evaluate --protocol av-benchmark --metrics ib` on a folder of generated files and a run whose clips
are real mp4 files. Theirs, step by step as hkchengrex/av-benchmark does it:
- frames: FFmpeg's `fps=0.5` filter (the `ffmpeg` command; av-benchmark reaches the same filter through
  torio), the first int(0.5 x 8) = 4 frames, torchvision's `Resize(224, bicubic)` / `ToDtype` / `Normalize`,
  ImageBind's `SpatialCrop(224, 3)`, consecutive frame pairs as clips (`extract_video.py`
  `encode_video_with_imagebind`), ImageBind's `ImageBindModel` vision tower;
- audio: ImageBind's `load_and_transform_audio_data` on the whole generated file (av-benchmark's
  `ImageBindAudioDataset` is that function), the model's audio tower;
- IB: 100 x the mean cosine (`av_bench/evaluate.py`).

The files make each of the three known differences visible: 10- and 25-fps videos (a source frame starts
exactly on every odd second), a 12.5-s generation (longer than the 8-s clip), and a 5.5-s stereo 44.1-kHz
generation with DC offsets (overlapping 2-s slices: the in-place mean removal matters).
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf
import torch

from tests.peers.test_passt_imagebind_peers import _imagebind_data, _imagebind_peer, _paper_section

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="the ffmpeg command is not installed")
SIZES = {"out_embed_dim": 48, "vision_embed_dim": 64, "vision_blocks": 2, "vision_heads": 4,
         "audio_embed_dim": 64, "audio_blocks": 2, "audio_heads": 4}
VIDEOS = {"vidten": "10", "vidtwentyfive": "25"}  # youtube id -> frame rate


def _soundfile_load(path):
    """torchaudio.load's (channels, samples) float32 result, read by soundfile (no torchcodec needed)."""
    wave, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return torch.from_numpy(wave.T.copy()), sr


def _run_with_videos(tmp_path):
    from v2a.stages import ingest

    videos = tmp_path / "videos"
    videos.mkdir()
    for ytid, rate in VIDEOS.items():
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                        f"testsrc2=size=320x240:rate={rate}:duration=9", "-c:v", "mpeg4", "-q:v", "3",
                        "-pix_fmt", "yuv420p", str(videos / f"{ytid}_000000.mp4")], check=True)
    csv = tmp_path / "vggsound.csv"
    csv.write_text("".join(f"{ytid},0,noise,test\n" for ytid in VIDEOS))
    run = tmp_path / "run"
    run.mkdir()
    ingest.ingest(str(run / "clips.parquet"), csv=str(csv), videos=str(videos))
    return run, {f"{ytid}_000000": videos / f"{ytid}_000000.mp4" for ytid in VIDEOS}


def _generations(tmp_path):
    gen = tmp_path / "gen"
    gen.mkdir()
    rng = np.random.default_rng(11)
    t16 = np.arange(int(12.5 * 16000)) / 16000
    long = 0.3 * np.sin(2 * np.pi * 330 * t16) * (t16 > 8.5) + 0.05 * rng.standard_normal(t16.size)
    sf.write(gen / "vidten_000000.wav", long.astype(np.float32), 16000, subtype="FLOAT")
    t44 = np.arange(int(5.5 * 44100)) / 44100
    left = 0.2 * np.sin(2 * np.pi * 440 * t44) + 0.1 * rng.standard_normal(t44.size) + 0.3 * (t44 > 2.5)
    right = 0.4 * rng.standard_normal(t44.size) - 0.2
    sf.write(gen / "vidtwentyfive_000000.wav", np.stack([left, right], 1).astype(np.float32), 44100,
             subtype="FLOAT")
    return gen


def _ffmpeg_frames(path, count):
    size = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height",
                           "-of", "csv=p=0", str(path)], capture_output=True, text=True, check=True).stdout
    width, height = (int(x) for x in size.strip().split(","))
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-vf", "fps=0.5", "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)[:count]


def _their_video_embedding(peer, model_mod, data, frames):
    """av-benchmark `VideoDataset.ib_transform` + `SpatialCrop` + `encode_video_with_imagebind`."""
    from torchvision.transforms import v2

    transform = v2.Compose([v2.Resize(224, interpolation=v2.InterpolationMode.BICUBIC), v2.ToImage(),
                            v2.ToDtype(torch.float32, scale=True),
                            v2.Normalize(mean=[0.48145466, 0.4578275, 0.40821073],
                                         std=[0.26862954, 0.26130258, 0.27577711])])
    chunk = transform(torch.from_numpy(frames.copy()).permute(0, 3, 1, 2))       # (T, C, H, W)
    crops = torch.stack(data.SpatialCrop(224, 3)([chunk])).unsqueeze(0)          # (1, 3, T, C, 224, 224)
    pairs = torch.cat([crops[:, :, i:i + 2] for i in range(crops.shape[2] - 1)], dim=1)  # (1, 3 (T-1), 2, C, ...)
    with torch.no_grad():
        return peer({model_mod.ModalityType.VISION: pairs.permute(0, 1, 3, 2, 4, 5)})[model_mod.ModalityType.VISION]


@needs_ffmpeg
def test_ib_equals_av_benchmarks_recipe_on_imagebinds_own_code(tmp_path, monkeypatch):
    pytest.importorskip("iopath")
    from v2a.metrics.extractors import build_extractor
    from v2a.stages.evaluate import evaluate_folder

    model_mod, peer, _ = _imagebind_peer()
    data = _imagebind_data()
    monkeypatch.setattr(data.torchaudio, "load", _soundfile_load)
    path = tmp_path / "imagebind_huge.pth"
    torch.save(peer.state_dict(), path)
    ours_model = build_extractor("imagebind", {**_paper_section("imagebind", path), **SIZES})

    run, videos = _run_with_videos(tmp_path)
    gen = _generations(tmp_path)
    rows = evaluate_folder(str(gen), str(tmp_path / "results"), {"imagebind": ours_model}, run_dir=str(run),
                           protocol="av-benchmark", metrics=["ib"])
    ours = {r["metric"]: r["value"] for r in rows}["ib"]

    cosines = []
    for clip_id, video in sorted(videos.items()):
        v = _their_video_embedding(peer, model_mod, data, _ffmpeg_frames(video, 4))
        with torch.no_grad():
            audio_in = data.load_and_transform_audio_data([str(gen / f"{clip_id}.wav")], "cpu")
            a = peer({model_mod.ModalityType.AUDIO: audio_in})[model_mod.ModalityType.AUDIO]
        cosines.append(float(torch.cosine_similarity(v.double(), a.double(), dim=-1)))
    theirs = 100.0 * float(np.mean(cosines))
    assert ours == pytest.approx(theirs, rel=1e-4, abs=1e-6)
