"""The input's ``rollout``: AWS's ranges for the IoT job settings, clear errors, normalized stages."""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.core.configure import configure
from lambdas.core.exceptions import InvalidInput
from pipeline.config.function_env import Settings
from pipeline.config.rollout import iot_job_from_deployment

CANARY_THEN_FLEET = {"stages": [{"name": "canary", "canary": {"devices": 2}}, {"name": "fleet"}]}


def run(settings: Settings, document: Any) -> dict[str, Any]:
    return configure({"input": document, "execution": "exec-1"}, settings=settings, s3=None)


def stage(**fields: Any) -> dict[str, Any]:
    return {
        "rollout": {"stages": [{"name": "canary", "canary": {"devices": 1}, **fields}, {"name": "fleet"}]}
    }


def test_no_rollout_is_one_fleet_stage_with_todays_iot_job(settings: Settings) -> None:
    out = run(settings, {"deployment": {"maximum_per_minute": 7, "abort_min_devices": 3}})
    (only,) = out["config"]["rollout"]["stages"]
    assert only["name"] == "fleet" and only["target"] == "fleet" and only["thing_group"] == "edge-fleet"
    assert only["failure_threshold_percent"] == 0 and only["bake_s"] == 0 and only["verify"] is True
    assert only["iot_job"] == iot_job_from_deployment(out["config"]["deployment"])
    assert only["iot_job"]["jobExecutionsRolloutConfig"] == {"maximumPerMinute": 7}
    assert only["iot_job"]["abortConfig"]["criteriaList"][0]["minNumberOfExecutedThings"] == 3
    assert out["rollout"] == {"index": 0, "count": 1, "stages": []}


def test_canary_then_fleet_is_normalized(settings: Settings) -> None:
    doc = {
        "rollout": {
            "stages": [
                {
                    "name": "canary",
                    "canary": {"percent": 10},
                    "bake_s": 30,
                    "failure_threshold_percent": 20,
                    "iot_job": {"timeoutConfig": {"inProgressTimeoutInMinutes": 5}},
                },
                {"name": "lab", "thing_group": "lab-devices", "verify": False},
                {"name": "fleet"},
            ]
        }
    }
    out = run(settings, doc)
    canary, lab, fleet = out["config"]["rollout"]["stages"]
    assert out["config"]["rollout"]["canary_thing_group"] == "edge-fleet-canary"
    assert (canary["target"], canary["thing_group"], canary["canary"]) == (
        "canary",
        "edge-fleet-canary",
        {"percent": 10},
    )
    assert canary["bake_s"] == 30 and canary["failure_threshold_percent"] == 20
    # the stage's own key replaces the default; the others come from deployment.*
    assert canary["iot_job"]["timeoutConfig"] == {"inProgressTimeoutInMinutes": 5}
    assert canary["iot_job"]["jobExecutionsRolloutConfig"] == {"maximumPerMinute": 100}
    # a stage with its own failure threshold gets no default IoT abort (it would cancel at the first
    # failure); a stage without one keeps today's
    assert "abortConfig" not in canary["iot_job"]
    assert (
        lab["iot_job"]["abortConfig"] == iot_job_from_deployment(out["config"]["deployment"])["abortConfig"]
    )
    assert (lab["target"], lab["thing_group"], lab["verify"]) == ("group", "lab-devices", False)
    assert (fleet["target"], fleet["thing_group"]) == ("fleet", "edge-fleet")
    assert out["rollout"]["count"] == 3


def test_canary_group_from_the_environment_then_the_input(settings: Settings) -> None:
    env = Settings(**{**settings.__dict__, "canary_thing_group": "pilots"})
    assert run(env, {"rollout": CANARY_THEN_FLEET})["config"]["rollout"]["canary_thing_group"] == "pilots"
    doc = {"rollout": {**CANARY_THEN_FLEET, "canary_thing_group": "early"}}
    assert run(env, doc)["config"]["rollout"]["canary_thing_group"] == "early"


def test_exponential_rate_and_abort_criteria_pass_through(settings: Settings) -> None:
    job = {
        "jobExecutionsRolloutConfig": {
            "exponentialRate": {
                "baseRatePerMinute": 5,
                "incrementFactor": 1.5,
                "rateIncreaseCriteria": {"numberOfSucceededThings": 10},
            }
        },
        "abortConfig": {
            "criteriaList": [
                {
                    "failureType": "ALL",
                    "action": "CANCEL",
                    "thresholdPercentage": 10.25,
                    "minNumberOfExecutedThings": 10,
                }
            ]
        },
    }
    canary = run(settings, stage(iot_job=job))["config"]["rollout"]["stages"][0]
    assert canary["iot_job"]["jobExecutionsRolloutConfig"] == job["jobExecutionsRolloutConfig"]
    assert canary["iot_job"]["abortConfig"] == job["abortConfig"]


@pytest.mark.parametrize(
    ("document", "words"),
    [
        (stage(iot_job={"jobExecutionsRolloutConfig": {"maximumPerMinute": 1001}}), "maximumPerMinute"),
        (stage(iot_job={"jobExecutionsRolloutConfig": {"maximumPerMinute": 0}}), "maximumPerMinute"),
        (
            stage(
                iot_job={
                    "jobExecutionsRolloutConfig": {
                        "exponentialRate": {
                            "baseRatePerMinute": 5,
                            "incrementFactor": 1.55,
                            "rateIncreaseCriteria": {"numberOfNotifiedThings": 1},
                        }
                    }
                }
            ),
            "more than one digit after the decimal point",
        ),
        (
            stage(
                iot_job={
                    "jobExecutionsRolloutConfig": {
                        "exponentialRate": {
                            "baseRatePerMinute": 5,
                            "incrementFactor": 6,
                            "rateIncreaseCriteria": {"numberOfNotifiedThings": 1},
                        }
                    }
                }
            ),
            "incrementFactor",
        ),
        (  # the local CreateDeployment (and the IoT job behind it on AWS) refuses 1.0: caught at Configure
            stage(
                iot_job={
                    "jobExecutionsRolloutConfig": {
                        "exponentialRate": {
                            "baseRatePerMinute": 5,
                            "incrementFactor": 1.0,
                            "rateIncreaseCriteria": {"numberOfNotifiedThings": 1},
                        }
                    }
                }
            ),
            "incrementFactor",
        ),
        (
            stage(
                iot_job={
                    "abortConfig": {
                        "criteriaList": [
                            {
                                "failureType": "FAILED",
                                "action": "CANCEL",
                                "thresholdPercentage": 10.999,
                                "minNumberOfExecutedThings": 1,
                            }
                        ]
                    }
                }
            ),
            "more than two digits",
        ),
        (
            stage(
                iot_job={
                    "abortConfig": {
                        "criteriaList": [
                            {
                                "failureType": "BROKEN",
                                "action": "CANCEL",
                                "thresholdPercentage": 10,
                                "minNumberOfExecutedThings": 0,
                            }
                        ]
                    }
                }
            ),
            "failureType",
        ),
        (
            stage(iot_job={"timeoutConfig": {"inProgressTimeoutInMinutes": 10081}}),
            "inProgressTimeoutInMinutes",
        ),
        (stage(bake_s=86401), "bake_s"),
        (stage(failure_threshold_percent=101), "failure_threshold_percent"),
        (stage(thing_group="other"), "not both"),
        ({"rollout": {"stages": [{"name": "a"}, {"name": "a", "thing_group": "x"}]}}, "already the name"),
        ({"rollout": {"stages": [{"name": "a"}, {"name": "b"}]}}, "must be disjoint"),
        ({"rollout": {"stages": [{"name": "Canary"}]}}, "name"),
        ({"rollout": {"stages": [{"name": "c", "canary": {"devices": 1, "percent": 5}}]}}, "canary"),
        ({"rollout": {"stages": [{"name": "c", "canary": {"percent": 0}}]}}, "percent"),
        ({"rollout": {"stages": []}}, "stages"),
        ({"rollout": {"canary_thing_group": "edge-fleet", **CANARY_THEN_FLEET}}, "must differ"),
    ],
)
def test_bad_rollout_is_a_clear_error(settings: Settings, document: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidInput) as info:
        run(settings, document)
    message = str(info.value)
    assert words in message and "$.rollout" in message, message
