"""The pipeline deployment's run form: the flow's parameter schema has the configuration's fields."""

from prefect.utilities.callables import parameter_schema


def test_the_pipeline_parameter_schema_shows_nested_fields_with_descriptions_and_defaults():
    from flows.pipeline import pipeline_flow
    from v2a.core.names import MAPPER_NAMES

    schema = parameter_schema(pipeline_flow.fn).model_dump()
    assert schema["properties"]["config"]["$ref"] == "#/definitions/PipelineConfig"
    defs = schema["definitions"]
    top = defs["PipelineConfig"]
    assert set(top["required"]) == {"out", "data"}
    assert top["properties"]["embed"]["$ref"] == "#/definitions/EmbedConfig"
    generate = defs["GenerateConfig"]["properties"]
    assert generate["mapper_guidance"]["default"] == 0.9 and "guidance" in generate["mapper_guidance"]["description"]
    assert generate["steps"] == {**generate["steps"], "type": "integer", "default": 200, "exclusiveMinimum": 0}
    assert defs["TrainStageConfig"]["properties"]["mapper"]["enum"] == list(MAPPER_NAMES)
    # Every field says what it is; a section's description sits on its definition.
    for d in defs.values():
        for f in d["properties"].values():
            assert f.get("description") or defs[f["$ref"].rsplit("/", 1)[-1]]["description"], f


def test_a_stage_flow_takes_its_section_as_one_parameter():
    from flows.embed import embed_flow

    schema = parameter_schema(embed_flow.fn).model_dump()
    assert schema["properties"]["embed"]["default"]["num_frames"] == 10
    assert "num_frames" in schema["definitions"]["EmbedConfig"]["properties"]
