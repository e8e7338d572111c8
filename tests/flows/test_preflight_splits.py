"""The pipeline's preflight refuses an unknown split in every config section that names one, in one line,
before Prefect starts. The sections are found from the config model, so a section that gains a `split`
is covered without editing this test."""

import pytest

from flows.cli import main
from v2a.config import PipelineConfig, Section


def _sections_with_a_split() -> list[str]:
    out = []
    for name, field in PipelineConfig.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, Section) and "split" in kind.model_fields:
            out.append(name)
    return out


SECTIONS = _sections_with_a_split()


def test_the_sections_naming_a_split_are_found():
    assert {"generate", "evaluate"} <= set(SECTIONS)


@pytest.fixture()
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.csv").write_text("abc,0,dog,train\nxyz,0,cat,test\n")
    (tmp_path / "videos").mkdir()
    from flows import server

    def refused(self):
        raise AssertionError("Prefect's server was started before the mistake was found")

    monkeypatch.setattr(server.TemporaryServer, "start", refused)
    return tmp_path


@pytest.mark.parametrize("section", SECTIONS)
def test_an_unknown_split_in_any_section_is_refused_before_prefect_starts(here, capsys, section):
    (here / "c.yaml").write_text("out: o\nprofile: tiny\ndata: {csv: data.csv, videos: videos}\n"
                                 f"{section}: {{split: validate}}\n")
    capsys.readouterr()
    assert main(["pipeline", "--config", str(here / "c.yaml")]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("v2a pipeline: error: "), err
    assert f"{section}.split = 'validate'" in err[0] and "accepted: test, train" in err[0], err[0]
