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


def test_a_bad_pipeline_config_is_refused_before_prefect_loads(tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "bad.yaml"
    bad.write_text(f"out: {tmp_path}/out\ndata: {{csv: a.csv, videos: v}}\nembed: {{shard_size: true}}\n")
    probe = ("import sys; from flows.cli import main; rc = main(['pipeline', '--config', sys.argv[1]]); "
             "print('prefect' in sys.modules); sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", probe, str(bad)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stdout.strip() == "False"  # refused without importing Prefect, let alone starting a server
    assert done.stderr.strip().splitlines() == ["v2a pipeline: error: embed.shard_size = True: input should be a "
                                                "valid integer"]


def test_stage_options_take_their_defaults_and_choices_from_the_config_models():
    from v2a.config import EmbedConfig, GenerateConfig
    from v2a.core.names import SCHEDULERS

    embed = build_parser().parse_args(["embed", "--out", "x"])
    assert {k: getattr(embed, k) for k in EmbedConfig.model_fields} == EmbedConfig().model_dump()
    gen = build_parser().parse_args(["generate", "--embeddings", "e", "--out", "o"])
    assert (gen.mapper_guidance, gen.mapper_steps) == (GenerateConfig().mapper_guidance, GenerateConfig().mapper_steps)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["generate", "--scheduler", "euler"])
    assert set(SCHEDULERS) <= set(build_parser()._subparsers._group_actions[0].choices["generate"]
                                  .format_help().replace(",", " ").replace("{", " ").replace("}", " ").split())


def test_version_and_an_example_in_every_help(capsys):
    from v2a import __version__

    with pytest.raises(SystemExit):
        build_parser().parse_args(["--version"])
    assert __version__ in capsys.readouterr().out
    for name, parser in build_parser()._subparsers._group_actions[0].choices.items():
        assert f"example:\n  v2a {name}" in parser.format_help(), name


def test_generator_guidance_is_a_flag_of_generate_and_interpolate_and_its_old_name_is_hidden():
    commands = build_parser()._subparsers._group_actions[0].choices
    for name in ("generate", "interpolate"):
        assert "--generator-guidance" in commands[name].format_help(), name
        assert "--guidance-scale" not in commands[name].format_help(), name
    with pytest.warns(DeprecationWarning, match="--generator-guidance"):
        args = build_parser().parse_args(["interpolate", "a.png", "b.png", "--checkpoint", "c",
                                          "--guidance-scale", "4"])
    assert args.generator_guidance == 4.0


def test_map_keeps_guidance_scale_for_the_mapper_s_own_guidance():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        args = build_parser().parse_args(["map", "--checkpoint", "c", "--embeddings", "e", "--out", "o",
                                          "--guidance-scale", "0.5"])
    assert args.guidance_scale == 0.5 and not hasattr(args, "generator_guidance")


def test_the_cli_names_an_old_config_key_in_one_warning_line(tmp_path):
    import subprocess
    import sys

    old = tmp_path / "old.yaml"
    old.write_text(f"out: {tmp_path}/out\ndata: {{csv: {tmp_path}/missing.csv, videos: v}}\n"
                   "generate: {guidance_scale: 3.0}\n")
    probe = "import sys; from flows.cli import main; sys.exit(main(['pipeline', '--config', sys.argv[1]]))"
    done = subprocess.run([sys.executable, "-c", probe, str(old)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2  # the missing CSV: the old key itself is no error
    assert done.stderr.splitlines()[0] == ("v2a: warning: generate.guidance_scale is deprecated: write "
                                           "generate.generator_guidance, AudioLDM's classifier-free guidance scale "
                                           "(the mapper's is mapper_guidance)")
