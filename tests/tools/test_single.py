import av
import numpy as np
import pytest
import soundfile as sf

from v2a.runtime.model_cache import empty_text_embedding, get_model
from v2a.tools.single import generate_for_inputs, interpolate


@pytest.fixture(scope="module")
def mapper(tmp_path_factory):
    """A real diffusion-MLP checkpoint, trained briefly on random pairs of the tiny profile's width."""
    from v2a.mapper.checkpoint import load_mapper
    from v2a.mapper.trainer import TrainConfig, train_mapper

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(2, 16, 32)).astype(np.float32)
    out = tmp_path_factory.mktemp("mapper")
    train_mapper(x, y, x[:4], y[:4], TrainConfig(mapper="diff-mlp", epochs=1, batch_size=8, val_sampling_steps=2),
                 out, metadata={"aggregator": "mean"}, progress=False)
    return load_mapper(out)


@pytest.fixture(scope="module")
def models():
    return get_model("tiny", "clip"), get_model("tiny", "generator"), empty_text_embedding("tiny")


def test_a_video_gets_a_wav_and_a_muxed_copy_with_the_original_video_stream(synth_dir, models, tmp_path):
    clip, gen, neg = models
    video = sorted((synth_dir / "videos").glob("*.mp4"))[0]
    written = generate_for_inputs([str(video)], str(tmp_path), clip, gen, neg, conditioning="no-mapper", steps=2)
    wave, sr = sf.read(written[0]["wav"])
    assert sr == 16000 and abs(len(wave) / sr - 2.0) < 0.05
    with av.open(str(video)) as a, av.open(written[0]["video"]) as b:
        original = [bytes(p) for p in a.demux(a.streams.video[0]) if p.size]
        muxed = [bytes(p) for p in b.demux(b.streams.video[0]) if p.size]
        assert original == muxed
        audio = b.streams.audio[0]
        assert audio.codec_context.name == "aac" and audio.rate == 16000
        assert abs(float(audio.duration * audio.time_base) - 2.0) < 0.1


def test_an_image_gets_samples_of_ten_seconds(synth_dir, models, mapper, tmp_path):
    clip, gen, neg = models
    image = sorted((synth_dir / "images").rglob("*.png"))[0]
    written = generate_for_inputs([str(image)], str(tmp_path), clip, gen, neg, mapper=mapper, samples=2,
                                  steps=2, mapper_steps=3)
    assert [w["sample"] for w in written] == [0, 1] and all(w["video"] is None for w in written)
    a, b = (sf.read(w["wav"])[0] for w in written)
    assert len(a) == 160000 and not np.array_equal(a, b)


def test_interpolation_between_an_image_and_a_text_writes_n_files(synth_dir, models, mapper, tmp_path):
    clip, gen, neg = models
    image = sorted((synth_dir / "images").rglob("*.png"))[0]
    paths = interpolate(str(image), "a dog barking", 3, str(tmp_path), clip, gen, neg, mapper, steps=2,
                        seconds=1.0, mapper_steps=3)
    waves = [sf.read(p)[0] for p in paths]
    assert len(waves) == 3 and all(len(w) == 16000 for w in waves)
    assert not np.array_equal(waves[0], waves[2])


def test_inputs_sharing_a_file_name_get_separate_outputs(synth_dir, models, tmp_path):
    clip, gen, neg = models
    images = sorted((synth_dir / "images").rglob("0.png"))[:2]
    assert images[0].name == images[1].name
    written = generate_for_inputs([str(i) for i in images], str(tmp_path), clip, gen, neg,
                                  conditioning="no-mapper", steps=2, seconds=0.5)
    assert len({w["wav"] for w in written}) == 2
    assert len(list(tmp_path.glob("*.wav"))) == 2
