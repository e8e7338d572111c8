import pytest

from v2a.config import ConfigError, config_from_dict
from v2a.models import ProfileError, load_profile

BASE = {"out": "/tmp/x", "data": {"csv": "a.csv", "videos": "v"}}


def test_defaults_are_the_paper_best_settings():
    cfg = config_from_dict(BASE)
    assert cfg.train.mapper == "diff-transformer"
    assert cfg.train.aggregator == "mean"
    assert cfg.generate.mapper_guidance == 0.9
    assert cfg.generate.mapper_steps == 200
    assert cfg.generate.seconds == 10.0


@pytest.mark.parametrize("values, field", [
    ({**BASE, "nonsense": 1}, "nonsense"),
    ({**BASE, "embed": {"num_frame": 3}}, "num_frame"),
    ({**BASE, "train": {"mapper": "gan"}}, "train.mapper"),
    ({**BASE, "train": {"aggregator": "max"}}, "train.aggregator"),
    ({**BASE, "generate": {"steps": 0}}, "generate.steps"),
    ({**BASE, "generate": {"scheduler": "euler"}}, "generate.scheduler"),
    ({**BASE, "embed": {"decoder": "ffmpeg"}}, "embed.decoder"),
    ({**BASE, "embed": {"frame_rate": 0}}, "embed.frame_rate"),
    ({**BASE, "embed": {"pool": "fork"}}, "embed.pool"),
    ({**BASE, "embed": {"workers": -1}}, "embed.workers"),
    ({"data": {"csv": "a.csv", "videos": "v"}}, "out"),
    ({"out": "x", "data": {"csv": "a.csv"}}, "data.videos"),
])
def test_bad_config_is_refused_naming_the_field(values, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        config_from_dict(values)


def test_digest_changes_only_with_the_sections_it_covers():
    a = config_from_dict(BASE)
    b = config_from_dict({**BASE, "generate": {"steps": 10}})
    assert a.digest("embed") == b.digest("embed")
    assert a.digest("generate") != b.digest("generate")


@pytest.mark.parametrize("section", ["data", "embed", "train", "generate", "evaluate", "runner", "cache"])
def test_an_unknown_field_in_any_section_is_refused_naming_it(section):
    values = {**BASE, section: {**BASE.get(section, {}), "nonsense": 1}}
    with pytest.raises(ConfigError, match=rf"{section}: unknown field\(s\) \['nonsense'\]"):
        config_from_dict(values)


@pytest.mark.parametrize("section, values, field", [
    ("embed", {"num_frames": 0}, "embed.num_frames"),
    ("embed", {"max_seconds": -1.0}, "embed.max_seconds"),
    ("embed", {"batch_size": "big"}, "embed.batch_size"),
    ("generate", {"seconds": 0}, "generate.seconds"),
    ("generate", {"samples": -2}, "generate.samples"),
    ("generate", {"generator_guidance": -0.5}, "generate.generator_guidance"),
    ("generate", {"conditioning": "audio"}, "generate.conditioning"),
    ("evaluate", {"metrics": ["fd", "psnr"]}, "evaluate.metrics"),
    ("runner", {"kind": "slurm"}, "runner.kind"),
    ("runner", {"max_workers": 0}, "runner.max_workers"),
    ("runner", {"kind": "thread", "address": "tcp://h:8786"}, "runner.address"),
    ("train", {"epochs": 0}, "train.epochs"),
    ("train", {"lr": -1e-4}, "train.lr"),
    ("train", {"ema_decay": 1.5}, "train.ema_decay"),
    ("train", {"sampling_steps": 2000}, "train.sampling_steps"),
    ("train", {"device": "tpu"}, "train.device"),
    ("train", {"options": {"epochs": 0}}, "train.epochs"),
])
def test_an_out_of_range_value_in_any_section_is_refused_naming_it(section, values, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        config_from_dict({**BASE, section: values})


@pytest.mark.parametrize("train, named", [
    ({"nonsense": 1}, "unknown field.*nonsense"),
    ({"epoch": 3}, "unknown field.*epoch"),
    ({"options": {"mapper": "reg-mlp"}}, "train.mapper sets the mapper"),
    ({"options": [("epochs", 3)]}, r"train\.options must be a mapping"),
])
def test_an_unknown_training_setting_is_refused_at_load_time_naming_it(train, named):
    with pytest.raises(ConfigError, match=named):
        config_from_dict({**BASE, "train": train})


def test_trainer_settings_are_fields_of_the_train_section():
    cfg = config_from_dict({**BASE, "train": {"mapper": "diff-mlp", "epochs": 3, "depth": 2}})
    trainer = cfg.train.train_config()
    assert (trainer.mapper, trainer.epochs, trainer.depth) == ("diff-mlp", 3, 2)
    assert type(trainer).__name__ == "TrainConfig" and "aggregator" not in trainer.to_dict()


def test_older_files_with_train_options_still_load_with_a_deprecation_warning():
    with pytest.warns(DeprecationWarning, match="train.options"):
        cfg = config_from_dict({**BASE, "train": {"mapper": "diff-mlp", "options": {"epochs": 3}}})
    assert cfg.train.epochs == 3


@pytest.mark.parametrize("override, field", [
    ({"nonsense": {}}, "nonsense"),
    ({"clip": {"colour": 1}}, "colour"),
    ({"clap": {"sample_rate": 48000}}, "sample_rate"),
    ({"generator": {"steps": 10}}, "steps"),
    ({"clip": {"dtype": "float8"}}, "clip.dtype"),
    ({"clap": {"embed_dim": 0}}, "clap.embed_dim"),
    ({"clap": {"max_length": 0}}, "clap.max_length"),
    ({"generator": {"max_length": -1}}, "generator.max_length"),
    ({"generator": {"seed": "x"}}, "generator.seed"),
    ({"clip.weights": ""}, "clip.weights"),
    ({"extractors": 3}, "extractors"),
])
def test_a_bad_profile_override_is_refused_naming_it(override, field):
    with pytest.raises(ProfileError, match=field.replace(".", r"\.")):
        load_profile("tiny", override)


@pytest.mark.parametrize("section, values, field", [
    ("embed", {"shard_size": True}, "embed.shard_size"),     # YAML's `true` is not 1
    ("embed", {"num_frames": 2.5}, "embed.num_frames"),      # nor is 2.5 a frame count
    ("embed", {"max_seconds": True}, "embed.max_seconds"),
    ("generate", {"seed": -1}, "generate.seed"),
    ("generate", {"samples": "2"}, "generate.samples"),
])
def test_integers_and_numbers_are_strict(section, values, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        config_from_dict({**BASE, section: values})


def test_an_unknown_choice_is_refused_listing_the_accepted_values():
    from v2a.core.names import MAPPER_NAMES

    with pytest.raises(ConfigError) as err:
        config_from_dict({**BASE, "train": {"mapper": "gan"}})
    message = str(err.value)
    assert "\n" not in message and message.startswith("train.mapper = 'gan'; accepted:")
    assert all(name in message for name in MAPPER_NAMES)


def test_an_unknown_profile_is_refused_when_the_file_is_loaded():
    with pytest.raises(ConfigError, match=r"^profile = 'nope'"):
        config_from_dict({**BASE, "profile": "nope"})


def test_a_section_built_in_code_is_checked_like_one_read_from_a_file():
    from v2a.config import EmbedConfig, GenerateConfig

    with pytest.raises(ConfigError, match=r"^embed\.num_frames = 0"):
        EmbedConfig(num_frames=0)
    g = GenerateConfig()
    with pytest.raises(ConfigError, match=r"generate\.steps"):
        g.steps = 2.5


def test_an_empty_section_means_its_defaults():
    from v2a.config import EmbedConfig

    assert config_from_dict({**BASE, "embed": None}).embed == EmbedConfig()


def test_a_config_file_loads_and_a_broken_one_is_one_line(tmp_path):
    from v2a.config import load_config

    good = tmp_path / "good.yaml"
    good.write_text("out: /tmp/x\ndata: {images: imgs}\ngenerate: {samples: 2}\n")
    assert load_config(str(good)).generate.samples == 2
    broken = tmp_path / "broken.yaml"
    broken.write_text("out: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML") as err:
        load_config(str(broken))
    assert "\n" not in str(err.value)


def test_the_library_keyword_defaults_are_the_configuration_defaults():
    import inspect

    from v2a.stages import generate
    from v2a.tools import single
    from v2a.config import GenerateConfig, defaults

    g = defaults(GenerateConfig)
    for fn, names in [(generate.generate_clips, {"samples", "seconds", "steps", "generator_guidance", "scheduler",
                                                 "batch_size"}),
                      (single.generate_for_inputs, {"samples", "steps", "generator_guidance", "scheduler",
                                                    "mapper_guidance", "mapper_steps"})]:
        params = inspect.signature(fn).parameters
        assert {n: params[n].default for n in names} == {n: g[n] for n in names}, fn.__name__


def test_the_digest_spells_generator_guidance_as_before_its_rename():
    # The digest is the default run id and each results row's config_digest: the rename must not change them.
    import hashlib
    import json

    cfg = config_from_dict({**BASE, "generate": {"generator_guidance": 3.0}})
    before = cfg.to_dict()
    before["generate"]["guidance_scale"] = before["generate"].pop("generator_guidance")
    del before["generate"]["shard_size"], before["embed"]["shards_per_task"]  # task granularity: not digested
    del before["evaluate"]["bootstrap"]  # interval resamples: not digested either
    del before["evaluate"]["keep_features"]  # whether compare's inputs are stored: nor this
    assert cfg.digest() == hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()[:16]
    assert cfg.digest("generate") != config_from_dict(BASE).digest("generate")


@pytest.mark.parametrize("load", ["dict", "file", "section"])
def test_the_old_generate_guidance_scale_key_loads_as_generator_guidance_with_a_deprecation_warning(load, tmp_path):
    from v2a.config import GenerateConfig, load_config

    with pytest.warns(DeprecationWarning, match=r"generate\.guidance_scale is deprecated: write "
                                                r"generate\.generator_guidance"):
        if load == "dict":
            g = config_from_dict({**BASE, "generate": {"guidance_scale": 3.5, "steps": 4}}).generate
        elif load == "file":
            (tmp_path / "old.yaml").write_text("out: /tmp/x\ndata: {images: imgs}\ngenerate: {guidance_scale: 3.5}\n")
            g = load_config(str(tmp_path / "old.yaml")).generate
        else:
            g = GenerateConfig(guidance_scale=3.5)
    assert g.generator_guidance == 3.5 and g.mapper_guidance == GenerateConfig().mapper_guidance
    assert "guidance_scale" not in g.model_dump()


def test_a_file_with_the_old_guidance_key_is_the_same_run_as_one_with_the_new_key():
    # Same run id and same config_digest in the results rows: a re-run of an older file resumes its run.
    new = config_from_dict({**BASE, "generate": {"generator_guidance": 3.5, "steps": 4}})
    with pytest.warns(DeprecationWarning):
        old = config_from_dict({**BASE, "generate": {"guidance_scale": 3.5, "steps": 4}})
    assert old == new and old.digest() == new.digest()


def test_a_bad_value_under_the_old_key_is_refused_naming_the_new_one():
    with pytest.warns(DeprecationWarning), pytest.raises(ConfigError, match=r"^generate\.generator_guidance = -1\.0"):
        config_from_dict({**BASE, "generate": {"guidance_scale": -1.0}})


def test_the_old_and_the_new_guidance_key_together_are_refused_in_one_line_naming_both():
    with pytest.raises(ConfigError) as err:
        config_from_dict({**BASE, "generate": {"guidance_scale": 2.0, "generator_guidance": 3.0}})
    message = str(err.value)
    assert "\n" not in message
    assert "generate.guidance_scale" in message and "generate.generator_guidance" in message


@pytest.fixture
def generate_command(monkeypatch):
    """`v2a generate --embeddings ...` up to its flow, which is not run: the GenerateConfig handed to it is kept."""
    import flows.cli as cli

    handed = {}
    monkeypatch.setattr(cli, "require_table", lambda *args, **kwargs: None)
    monkeypatch.setattr(cli.preflight, "profile", lambda *args, **kwargs: None)
    monkeypatch.setattr(cli.preflight, "splits_in_clips", lambda *args, **kwargs: None)
    monkeypatch.setattr(cli, "_flow", lambda module, name: lambda *args, **kwargs: handed.update(kwargs))
    return lambda *flags, out: (cli.main(["generate", "--embeddings", "e", "--out", out, "--conditioning",
                                          "no-mapper", *flags]), handed.get("generate"))


def test_the_generator_guidance_flag_reaches_the_generate_config(generate_command, tmp_path):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # the new flag is not deprecated
        rc, generate = generate_command("--generator-guidance", "3.5", "--mapper-guidance", "0.7", out=str(tmp_path))
    assert rc == 0 and (generate.generator_guidance, generate.mapper_guidance) == (3.5, 0.7)
    assert generate_command(out=str(tmp_path))[1].generator_guidance == 2.5  # AudioLDM's own default


def test_the_old_guidance_scale_flag_still_reaches_generator_guidance_with_a_deprecation_warning(generate_command,
                                                                                                 tmp_path):
    with pytest.warns(DeprecationWarning, match="--guidance-scale is deprecated: use --generator-guidance"):
        rc, generate = generate_command("--guidance-scale", "3.5", out=str(tmp_path))
    assert rc == 0 and generate.generator_guidance == 3.5


def test_the_old_and_the_new_guidance_flag_together_are_refused_naming_both(generate_command, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop, pytest.warns(DeprecationWarning):
        generate_command("--guidance-scale", "2", "--generator-guidance", "3", out=str(tmp_path))
    assert stop.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--guidance-scale" in error and "--generator-guidance" in error


def test_task_granularity_changes_neither_the_digest_nor_the_run_id():
    # Values computed by the code before generate.shard_size and embed.shards_per_task existed (main 2889c7a):
    # existing runs keep their ids and results rows their config_digest.
    cfg = config_from_dict({**BASE, "generate": {"generator_guidance": 3.0}})
    assert cfg.digest() == "4385684acc8ccd42"
    assert cfg.digest("profile", "data", "embed", "train", "generate") == "f70171745a6c7c6d"
    resharded = config_from_dict({**BASE, "generate": {"generator_guidance": 3.0, "shard_size": 7},
                                  "embed": {"shards_per_task": 1}})
    assert resharded.generate.shard_size == 7 and resharded.embed.shards_per_task == 1
    assert resharded.digest() == cfg.digest()
    assert config_from_dict({**BASE, "embed": {"shard_size": 7}}).digest() != config_from_dict(BASE).digest()


def test_frechet_bootstrap_resamples_change_neither_the_digest_nor_the_run_id():
    # Only the interval columns depend on evaluate.bootstrap, and they record their resample count: asking for
    # Fréchet intervals later must keep the run's id and config_digest (the pinned values above).
    cfg = config_from_dict({**BASE, "generate": {"generator_guidance": 3.0}, "evaluate": {"bootstrap": 200}})
    assert cfg.evaluate.bootstrap == 200
    assert cfg.digest() == "4385684acc8ccd42" and cfg.digest("evaluate") == config_from_dict(BASE).digest("evaluate")
    assert config_from_dict({**BASE, "evaluate": {"split": "val"}}).digest() != config_from_dict(BASE).digest()
    with pytest.raises(ConfigError, match="evaluate.bootstrap"):
        config_from_dict({**BASE, "evaluate": {"bootstrap": -1}})


def test_keeping_the_features_changes_neither_the_digest_nor_the_run_id():
    # Storing the set statistics' inputs for `v2a compare` changes no value: a run scored again with them must
    # keep its id and config_digest (the pinned values above).
    cfg = config_from_dict({**BASE, "generate": {"generator_guidance": 3.0}, "evaluate": {"keep_features": True}})
    assert cfg.evaluate.keep_features is True and config_from_dict(BASE).evaluate.keep_features is False
    assert cfg.digest() == "4385684acc8ccd42" and cfg.digest("evaluate") == config_from_dict(BASE).digest("evaluate")
