import pytest

from v2a.models import ProfileError, deep_merge, load_profile, profile_names


def test_three_profiles_ship_with_the_package():
    assert {"tiny", "paper-arch", "paper"} <= set(profile_names())


@pytest.mark.parametrize("name", ["tiny", "paper-arch", "paper"])
def test_every_shipped_profile_validates(name):
    prof = load_profile(name)
    assert {"clip", "clap", "generator", "extractors"} <= set(prof)
    assert prof["name"] == name


def test_tiny_embedding_sizes_are_32():
    prof = load_profile("tiny")
    assert prof["clip"]["arch"]["embed_dim"] == 32
    assert prof["clap"]["embed_dim"] == 32
    assert prof["generator"]["unet"]["projection_class_embeddings_input_dim"] == 32


def test_paper_arch_generator_is_audioldm_s():
    gen = load_profile("paper-arch")["generator"]
    assert gen["unet"]["block_out_channels"] == [128, 256, 384, 640]
    assert gen["vae"]["block_out_channels"] == [128, 256, 512]
    assert gen["vocoder"]["upsample_rates"] == [5, 4, 2, 2, 2]
    assert gen["scheduler"]["beta_start"] == 0.0015 and gen["scheduler"]["beta_end"] == 0.0195


def test_a_profile_loads_from_a_yaml_path(tmp_path):
    import yaml

    prof = load_profile("tiny")
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({**prof, "name": "mine"}))
    assert load_profile(str(path))["clip"] == prof["clip"]


def test_overrides_are_deep_merged():
    prof = load_profile("paper", {"generator": {"weights": "/models/audioldm"}, "clap.weights": "/models/a.ckpt"})
    assert prof["generator"]["weights"] == "/models/audioldm"
    assert prof["generator"]["dtype"] == "auto"  # untouched siblings survive
    assert prof["clap"]["weights"] == "/models/a.ckpt"
    assert deep_merge({"a": {"b": 1, "c": 2}}, {"a": {"b": 3}}) == {"a": {"b": 3, "c": 2}}


@pytest.mark.parametrize("override, field", [
    ({"clip": {"colour": 1}}, "clip"),
    ({"clap": {"dtype": "float8"}}, "clap.dtype"),
    ({"generator": {"weights": None, "unet": None}}, "generator.unet"),
])
def test_a_bad_field_is_refused_by_name(override, field):
    with pytest.raises(ProfileError, match=field.replace(".", r"\.")):
        load_profile("tiny", override)


def test_an_unknown_profile_lists_the_accepted_names():
    with pytest.raises(ProfileError, match="tiny"):
        load_profile("huge")
