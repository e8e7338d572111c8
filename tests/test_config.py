import pytest

from v2a.config import ConfigError, config_from_dict

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
