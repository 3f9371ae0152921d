"""`mlops-edge run` refuses bad options and bad data before it starts anything."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from mlops_edge.environment.run_data import demo_data, user_data
from mlops_edge.environment.run_options import RunError, RunOptions, execution_input
from mlops_edge.main import main
from pipeline.ml.exceptions import InvalidDataset

SCHEMA = json.loads((Path(__file__).resolve().parents[3] / "pipeline/config/input.schema.json").read_text())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "nope.csv", "--target", "y"], "no such file"),
        (["--data", "{csv}"], "--data needs --target"),
        (["--model-package", "arn:aws:s3:::bucket"], "not a model package version ARN"),
        (["--hp", "num_round"], "expected NAME=VALUE"),
        (["--devices", "0"], "0 is not in the range"),
    ],
)
def test_bad_options_fail_fast_with_a_clear_message(tmp_path: Path, args: list[str], message: str) -> None:
    csv = tmp_path / "d.csv"
    csv.write_text("a,y\n1,2\n")
    args = [a.replace("{csv}", str(csv)) for a in args]
    result = CliRunner().invoke(main, ["run", "--state-dir", str(tmp_path / "state"), *args])
    assert result.exit_code != 0
    assert message in result.output
    assert not (tmp_path / "state" / "cloud").exists(), "nothing may start before the options are checked"


def test_bad_csv_is_refused_before_the_local_cloud_starts(tmp_path: Path) -> None:
    csv = tmp_path / "d.csv"
    csv.write_text("a,b,label\n1,x,0\n" * 30)
    result = CliRunner().invoke(
        main, ["run", "--state-dir", str(tmp_path / "state"), "--data", str(csv), "--target", "label"]
    )
    assert result.exit_code == 1
    assert "must be numeric" in result.output and "b" in result.output
    assert not (tmp_path / "state" / "cloud").exists()


@pytest.mark.parametrize(
    ("content", "target", "message"),
    [
        ("", "y", "empty"),
        ("a,b\n1,2\n" * 30, "y", "no target column 'y'"),
        ("y\n1\n" * 30, "y", "nothing to learn from"),
        ("a,y\n1,2\n2,3\n", "y", "at least 20"),
        ("a,y\n" + "1,\n" * 25, "y", "missing values"),
        # refused before any training job, not 20-30 s into the run
        ("a,y\n" + "".join(f"{i},5\n" for i in range(25)), "y", "5 in every row"),
    ],
)
def test_user_data_validation(tmp_path: Path, content: str, target: str, message: str) -> None:
    csv = tmp_path / "d.csv"
    csv.write_text(content)
    with pytest.raises(InvalidDataset, match=message):
        user_data(csv, target=target, task="auto", out_dir=tmp_path)


def test_user_data_is_split_into_train_and_validation(tmp_path: Path) -> None:
    csv = tmp_path / "d.csv"
    csv.write_text("a,b,y\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(100)))
    data = user_data(csv, target="y", task="binary", out_dir=tmp_path / "out")
    train = data.train_csv.read_text().splitlines()
    valid = data.validation_csv.read_text().splitlines()
    assert train[0] == valid[0] == "a,b,y"
    assert len(train) - 1 + len(valid) - 1 == 100 and len(valid) - 1 == 20


def test_execution_input_is_valid_against_the_published_schema(tmp_path: Path) -> None:
    data = demo_data("wine", tmp_path)
    dataset = {"train": "s3://b/k/train.csv", "validation": "s3://b/k/validation.csv", "target": data.target,
               "task": data.task}  # fmt: skip
    for options in (
        RunOptions(),
        RunOptions(hyperparameters={"num_round": 5}),
        RunOptions(model_package_arn="arn:aws:sagemaker:us-east-1:123456789012:model-package/g/1"),
    ):
        document = execution_input(
            options, None if options.model_package_arn else dataset, python=sys.executable
        )
        jsonschema.Draft202012Validator(SCHEMA).validate(document)


def test_run_options_check_rejects_missing_target() -> None:
    with pytest.raises(RunError, match="--target"):
        RunOptions(data=Path(__file__)).check()


def test_hyperparameters_outside_the_schema_are_refused_before_anything_starts(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["run", "--state-dir", str(tmp_path / "state"), "--hp", "max_depth=-3"])
    assert result.exit_code == 1
    assert "$.hyperparameters.max_depth" in result.output
    assert not (tmp_path / "state" / "cloud").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--devices", "101"], "101 is not in the range 1<=x<=100"),
        (
            ["--devices", "5", "--canary", "6"],
            "--canary 6: the canary stage takes 1 to 4 of the --devices (5)",
        ),
        (["--devices", "2", "--canary", "2"], "so the fleet stage after it has at least one device"),
        (["--canary", "0"], "0 is not in the range x>=1"),
        (["--devices", "3", "--fail-devices", "4"], "--fail-devices '4': not a device of this run"),
        (["--devices", "3", "--fail-devices", "dev-1"], "mlops-edge-device-01 … mlops-edge-device-03"),
    ],
)
def test_fleet_options_are_refused_before_anything_starts(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = CliRunner().invoke(main, ["run", "--state-dir", str(tmp_path / "state"), *args])
    assert result.exit_code != 0
    assert message in result.output
    assert not (tmp_path / "state" / "cloud").exists()


def test_fail_devices_take_names_or_numbers() -> None:
    options = RunOptions(devices=12, fail_devices=("3", "mlops-edge-device-12", "03"))
    assert options.faulty() == ["mlops-edge-device-03", "mlops-edge-device-12"]
    assert RunOptions(devices=2).faulty() == []


def test_canary_adds_the_interface_rollout_section_valid_against_the_schema() -> None:
    document = execution_input(RunOptions(devices=20, canary=2), None, python=sys.executable)
    assert document["rollout"] == {
        "stages": [{"name": "canary", "canary": {"devices": 2}}, {"name": "fleet"}]
    }
    jsonschema.Draft202012Validator(SCHEMA).validate(document)
    assert "rollout" not in execution_input(RunOptions(devices=20), None, python=sys.executable)


def test_the_command_and_the_options_agree_on_the_device_limit() -> None:
    from mlops_edge.commands import run as run_command
    from mlops_edge.environment.run_options import MAX_DEVICES

    assert run_command.MAX_DEVICES == MAX_DEVICES == 100
