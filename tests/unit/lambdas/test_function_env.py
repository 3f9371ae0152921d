"""The function environment is written (CDK stack, local deploy) and read (handlers) by one class."""

from __future__ import annotations

from dataclasses import fields

from pipeline.config.function_env import Settings


def test_what_is_written_is_what_the_handlers_read() -> None:
    written = Settings(
        bucket="b",
        model_package_group="g",
        thing_group="t",
        component_prefix="com.example.x",
        dataset_uri="s3://b/datasets/train/",
        mqtt_secret_id="verifier",
    )
    assert Settings.from_env(written.to_env()) == written


def test_every_field_has_its_own_variable() -> None:
    names = [Settings.variable(f.name) for f in fields(Settings)]
    assert len(set(names)) == len(names)
    assert Settings.variable("bucket") == "MLOPS_EDGE_BUCKET"


def test_unset_and_empty_variables_keep_the_defaults_and_prefixes_end_with_a_slash() -> None:
    read = Settings.from_env({"MLOPS_EDGE_BUCKET": "", "MLOPS_EDGE_ARTIFACT_PREFIX": "art"})
    assert read.bucket == "" and read.component_prefix == Settings().component_prefix
    assert read.artifact_prefix == "art/" and read.state_prefix == "state/"


def test_empty_fields_are_not_written() -> None:
    assert "MLOPS_EDGE_BUCKET" not in Settings().to_env()
