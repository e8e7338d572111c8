import csv

import pytest

from flows.cli import build_parser, main


def test_synth_command_writes_a_vggsound_csv(tmp_path):
    assert main(["synth", "--out", str(tmp_path), "--classes", "2", "--clips-per-class", "2", "--seconds", "1"]) == 0
    rows = list(csv.reader(open(tmp_path / "vggsound.csv")))
    assert len(rows) == 4 and all(len(r) == 4 for r in rows)


def test_bad_arguments_exit_with_a_message_not_a_traceback(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path), "--classes", "0"]) == 2
    assert "classes" in capsys.readouterr().err


def test_unknown_mapper_is_refused_by_the_parser():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--embeddings", "x", "--mapper", "gan", "--out", "y"])


@pytest.mark.parametrize("command", ["synth", "ingest", "embed", "train", "map", "generate", "evaluate", "results",
                                     "pipeline", "demo", "report"])
def test_every_stage_has_a_subcommand(command):
    assert command in build_parser()._subparsers._group_actions[0].choices
