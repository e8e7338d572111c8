"""The pipeline deployment's run form: the flow's parameter schema has the configuration's fields."""

from prefect.utilities.callables import parameter_schema


def test_the_pipeline_parameter_schema_shows_nested_fields_with_descriptions_and_defaults():
    from flows.pipeline import pipeline_flow
    from v2a.core.names import MAPPER_NAMES

    schema = parameter_schema(pipeline_flow.fn).model_dump()
    assert {"$ref": "#/definitions/PipelineConfig"} in schema["properties"]["config"]["anyOf"]
    # A YAML file's path or URI is the other parameter: the server accepts only an object for `config`.
    assert {"type": "string"} in schema["properties"]["config_file"]["anyOf"]
    defs = schema["definitions"]
    top = defs["PipelineConfig"]
    assert set(top["required"]) == {"out", "data"}
    assert top["properties"]["embed"]["$ref"] == "#/definitions/EmbedConfig"
    generate = defs["GenerateConfig"]["properties"]
    assert generate["mapper_guidance"]["default"] == 0.9 and "guidance" in generate["mapper_guidance"]["description"]
    # The run form shows AudioLDM's guidance under its new name only (the old one still loads).
    assert generate["generator_guidance"]["default"] == 2.5 and "guidance_scale" not in generate
    assert generate["steps"] == {**generate["steps"], "type": "integer", "default": 200, "exclusiveMinimum": 0}
    assert defs["TrainStageConfig"]["properties"]["mapper"]["enum"] == list(MAPPER_NAMES)
    # Task granularity is set in the run form too, not in code.
    assert generate["shard_size"]["default"] == 64 and "task" in generate["shard_size"]["description"]
    assert defs["EmbedConfig"]["properties"]["shards_per_task"]["default"] == 8
    # Every field says what it is; a section's description sits on its definition.
    for d in defs.values():
        for f in d["properties"].values():
            assert f.get("description") or defs[f["$ref"].rsplit("/", 1)[-1]]["description"], f


def test_a_stage_flow_takes_its_section_as_one_parameter():
    from flows.embed import embed_flow

    schema = parameter_schema(embed_flow.fn).model_dump()
    assert schema["properties"]["embed"]["default"]["num_frames"] == 10
    assert "num_frames" in schema["definitions"]["EmbedConfig"]["properties"]


def test_the_pipeline_takes_exactly_one_of_config_and_config_file(tmp_path):
    import pytest
    import yaml

    from flows.pipeline import given_config
    from v2a.config import ConfigError

    fields = {"out": str(tmp_path / "run"), "profile": "tiny", "data": {"images": str(tmp_path)}}
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(fields))
    assert given_config(None, str(path)) == given_config(fields, None)
    with pytest.raises(ConfigError, match="give one, not both"):
        given_config(fields, str(path))
    # Both, with a `config` that is not even valid: the first thing said is still "not both".
    with pytest.raises(ConfigError, match="give one, not both"):
        given_config({"out": ""}, str(path))
    with pytest.raises(ConfigError, match="neither .* give one"):
        given_config(None, None)
    with pytest.raises(ConfigError, match=r"^pipeline: config_file .*missing.yaml: not found; check the path"):
        given_config(None, str(tmp_path / "missing.yaml"))
