"""Configure: schema validation, defaults (schema + environment), the training request it builds."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lambdas.core.configure import configure, job_name
from lambdas.core.exceptions import ConfigurationError, InvalidInput
from pipeline.config import example_input, schema
from pipeline.config.function_env import Settings
from pipeline.config.validation import fill_defaults

from .conftest import BUCKET, assert_selectable


def run(settings: Settings, document: Any, s3: Any = None) -> dict[str, Any]:
    return configure({"input": document, "execution": "exec-1"}, settings=settings, s3=s3)


def test_empty_input_gets_every_default(settings: Settings) -> None:
    out = run(settings, {})
    assert_selectable("configure", out)
    config = out["config"]
    assert out["polls"] == {loop: {"count": 0} for loop in ("training", "components", "deployment")}
    assert config["dataset"] == {
        "train": f"s3://{BUCKET}/datasets/train/",
        "validation": None,
        "target": "target",
        "task": "auto",
    }
    assert config["model_package_group"] == "edge-models"
    assert config["deployment"]["thing_group"] == "edge-fleet"
    assert config["components"]["model_name"] == "com.example.test.Model"
    assert config["components"]["inference_name"] == "com.example.test.Inference"
    # a time budget per loop; max_polls, its safety bound, derived from it
    assert config["poll"]["training"] == {"interval_s": 30, "timeout_s": 7200, "max_polls": 241}
    assert config["poll"]["deployment"] == {"interval_s": 10, "timeout_s": 600, "max_polls": 61}
    assert config["auto_approve"] is True and config["model_package_arn"] is None
    assert config["verification"]["requests"] == 10
    json.dumps(config, allow_nan=False)  # Step Functions needs plain JSON


def test_none_input_is_empty_input(settings: Settings) -> None:
    assert run(settings, None)["config"]["dataset"]["target"] == "target"


def test_training_request_is_script_mode_with_string_hyperparameters(settings: Settings) -> None:
    training = run(settings, {"hyperparameters": {"num_round": 7}, "dataset": {"target": "y"}})["config"][
        "training"
    ]
    hps = training["hyperparameters"]
    assert all(isinstance(v, str) for v in hps.values())
    assert hps["sagemaker_program"] == "train.py"
    assert hps["sagemaker_submit_directory"] == settings.sourcedir_uri
    assert hps["num_round"] == "7" and hps["target"] == "y" and hps["task"] == "auto"
    assert [c["ChannelName"] for c in training["input_data_config"]] == ["train"]
    metric_names = {m["Name"] for m in training["algorithm_specification"]["MetricDefinitions"]}
    assert "validation:rmse" in metric_names and "validation:auc" in metric_names
    assert training["resource_config"]["InstanceCount"] == 1
    assert training["output_data_config"]["S3OutputPath"] == f"s3://{BUCKET}/artifacts/training/"


def test_validation_channel_when_given(settings: Settings) -> None:
    doc = {"dataset": {"train": "s3://b/t/", "validation": "s3://b/v/"}}
    channels = run(settings, doc)["config"]["training"]["input_data_config"]
    assert [c["ChannelName"] for c in channels] == ["train", "validation"]


def test_partial_poll_merges_with_its_default(settings: Settings) -> None:
    poll = run(settings, {"poll": {"training": {"interval_s": 1}}})["config"]["poll"]
    assert poll["training"] == {"interval_s": 1, "timeout_s": 7200, "max_polls": 7201}
    assert poll["deployment"]["interval_s"] == 10


def test_a_given_max_polls_stays_the_safety_bound(settings: Settings) -> None:
    doc = {"poll": {"deployment": {"interval_s": 1, "timeout_s": 300, "max_polls": 50}}}
    poll = run(settings, doc)["config"]["poll"]
    assert poll["deployment"] == {"interval_s": 1, "timeout_s": 300, "max_polls": 50}


def test_input_overrides_environment(settings: Settings) -> None:
    config = run(settings, {"deployment": {"thing_group": "other"}, "components": {"prefix": "org.x"}})[
        "config"
    ]
    assert config["deployment"]["thing_group"] == "other"
    assert config["components"]["model_name"] == "org.x.Model"


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ({"hyperparameters": {"num_round": "many"}}, "$.hyperparameters.num_round"),
        ({"hyperparamters": {}}, "hyperparamters"),
        ({"dataset": {"task": "clustering"}}, "$.dataset.task"),
        ({"dataset": {"train": "/local/path"}}, "$.dataset.train"),
        ({"poll": {"training": {"interval_s": 0}}}, "$.poll.training.interval_s"),
        ({"model_package_arn": "not-an-arn"}, "$.model_package_arn"),
        ([1, 2], "JSON object"),
    ],
)
def test_bad_input_fails_with_a_clear_cause(settings: Settings, document: Any, fragment: str) -> None:
    with pytest.raises(InvalidInput) as info:
        run(settings, document)
    assert fragment in str(info.value)


def test_console_placeholder_comment_is_accepted(settings: Settings) -> None:
    assert run(settings, {"Comment": "Insert your JSON here"})["config"]["execution"] == "exec-1"


def test_missing_environment_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError) as info:
        run(Settings(bucket="b"), {})
    assert "MLOPS_EDGE_MODEL_PACKAGE_GROUP" in str(info.value) and "MLOPS_EDGE_THING_GROUP" in str(info.value)


def test_example_input_is_valid_and_complete(settings: Settings) -> None:
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(schema())
    config = run(settings, example_input())["config"]
    assert config["components"]["inference_configuration"] == {"TelemetryIntervalSeconds": 10}


def test_every_schema_property_documents_or_defaults() -> None:
    """Every field has a default or says where its default comes from."""
    root = schema()

    def walk(node: dict[str, Any], path: str) -> None:
        for name, sub in node.get("properties", {}).items():
            if name.lower() == "comment":
                continue
            assert "default" in sub or "Default:" in sub.get("description", "") or "$ref" in sub, (
                f"{path}.{name}"
            )
            if "properties" in sub:
                walk(sub, f"{path}.{name}")

    walk(root, "$")


def test_model_package_arn_skips_the_training_request(settings: Settings) -> None:
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/edge-models/3"
    config = run(settings, {"model_package_arn": arn})["config"]
    assert config["model_package_arn"] == arn
    assert set(config["training"]) == {"job_name"}


def test_sourcedir_is_uploaded_once_at_a_content_addressed_key(settings: Settings, s3: Any) -> None:
    plain = Settings(**{**settings.__dict__, "sourcedir_uri": ""})
    first = run(plain, {}, s3)["config"]["training"]["hyperparameters"]["sagemaker_submit_directory"]
    second = run(plain, {}, s3)["config"]["training"]["hyperparameters"]["sagemaker_submit_directory"]
    assert first == second and first.startswith(f"s3://{BUCKET}/artifacts/training/sourcedir-")


@pytest.mark.parametrize("execution", ["exec-1", "x" * 80, "a_b.c d", "---"])
def test_job_names_are_valid_and_distinct(execution: str) -> None:
    import re

    name = job_name(execution)
    assert len(name) <= 63 and re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*", name), name
    assert job_name(execution + "y") != name


def test_fill_defaults_keeps_given_values() -> None:
    root = schema()
    filled = fill_defaults({"verification": {"requests": 3}}, root, root)
    assert filled["verification"] == {"requests": 3, "timeout_s": 20, "tolerance": None}
