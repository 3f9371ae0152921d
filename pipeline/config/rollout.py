"""The execution input's ``rollout``: its checks beyond the schema, and its normalized stages.

The schema (``input.schema.json``) holds the shapes and AWS's documented ranges; what JSON Schema
cannot say well lives here: one digit after the decimal point for ``incrementFactor`` and two for
``thresholdPercentage`` (``multipleOf`` on floats fails on 1.1 / 0.1), unique stage names, a stage
naming both a share of the fleet and a group, two stages on one group. Greengrass combines the
version requirements of every group a core belongs to, so stage targets must be disjoint.

:func:`normalize` turns the input into the stages every later state reads (``config.rollout``):
each with its target kind and thing group resolved and its full IoT job configuration. No
``rollout`` gives one stage ``fleet`` to ``deployment.thing_group`` with the IoT job settings
derived from ``deployment.*``: exactly the single deployment of before. No jsonschema import here,
so zip-packaged handlers can normalize an older ``config`` too.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

__all__ = [
    "FLEET",
    "default_canary_group",
    "iot_job_from_deployment",
    "normalize",
    "problems",
    "stage_of",
]

#: The name of the one stage an input without ``rollout`` has.
FLEET = "fleet"


def iot_job_from_deployment(deployment: Mapping[str, Any]) -> dict[str, Any]:
    """CreateDeployment's ``iotJobConfiguration`` from ``deployment.*`` (the single-stage default)."""
    return {
        "jobExecutionsRolloutConfig": {"maximumPerMinute": int(deployment.get("maximum_per_minute", 100))},
        "abortConfig": {
            "criteriaList": [
                {
                    "failureType": "FAILED",
                    "action": "CANCEL",
                    "thresholdPercentage": float(deployment.get("abort_threshold_percent", 10)),
                    "minNumberOfExecutedThings": int(deployment.get("abort_min_devices", 1)),
                }
            ]
        },
        "timeoutConfig": {
            "inProgressTimeoutInMinutes": int(deployment.get("in_progress_timeout_minutes", 30))
        },
    }


def default_canary_group(fleet_group: str, configured: str = "") -> str:
    """The canary group: configured (``MLOPS_EDGE_CANARY_THING_GROUP``), else ``<fleet>-canary``."""
    return configured or f"{fleet_group}-canary"


def _decimals(value: Any) -> int:
    exponent = Decimal(str(value)).normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _iot_job_problems(where: str, job: Mapping[str, Any]) -> list[str]:
    found = []
    rate = (job.get("jobExecutionsRolloutConfig") or {}).get("exponentialRate") or {}
    if "incrementFactor" in rate and _decimals(rate["incrementFactor"]) > 1:
        found.append(
            f"{where}.iot_job.jobExecutionsRolloutConfig.exponentialRate.incrementFactor: "
            f"{rate['incrementFactor']} has more than one digit after the decimal point (AWS takes 1.5, not 1.55)"
        )
    for i, criteria in enumerate((job.get("abortConfig") or {}).get("criteriaList") or []):
        if "thresholdPercentage" in criteria and _decimals(criteria["thresholdPercentage"]) > 2:
            found.append(
                f"{where}.iot_job.abortConfig.criteriaList[{i}].thresholdPercentage: "
                f"{criteria['thresholdPercentage']} has more than two digits after the decimal point "
                "(AWS takes 10.99, not 10.999)"
            )
    return found


def problems(rollout: Any, fleet_group: str | None = None) -> list[str]:
    """What is wrong with ``rollout`` (already valid against the schema), each with its JSON path."""
    if not isinstance(rollout, Mapping):
        return []
    found: list[str] = []
    seen: dict[str, int] = {}
    groups: dict[str, int] = {}
    shares = 0
    for i, stage in enumerate(rollout.get("stages") or []):
        where = f"$.rollout.stages[{i}]"
        name = stage.get("name")
        if name in seen:
            found.append(f"{where}.name: {name!r} is already the name of stages[{seen[name]}]")
        seen.setdefault(name, i)
        if "canary" in stage and "thing_group" in stage:
            found.append(f"{where}: give either 'canary' (a share of the fleet) or 'thing_group', not both")
        shares += "canary" in stage
        group = stage.get("thing_group") or ("<canary>" if "canary" in stage else fleet_group or "<fleet>")
        if group in groups:
            found.append(
                f"{where}: targets thing group {group} as stages[{groups[group]}] does; stage targets must "
                "be disjoint (Greengrass combines the versions of every group a core is in)"
            )
        groups.setdefault(group, i)
        found.extend(_iot_job_problems(where, stage.get("iot_job") or {}))
    if shares > 1:
        found.append("$.rollout.stages: at most one stage may take a share of the fleet ('canary')")
    canary = rollout.get("canary_thing_group")
    if canary and fleet_group and canary == fleet_group:
        found.append("$.rollout.canary_thing_group: must differ from deployment.thing_group")
    return found


def _stage(raw: Mapping[str, Any], deployment: Mapping[str, Any], canary_group: str) -> dict[str, Any]:
    """One normalized stage: its target resolved, defaults filled, its IoT job complete."""
    if "canary" in raw:
        target, group = "canary", canary_group
    elif raw.get("thing_group"):
        target, group = "group", raw["thing_group"]
    else:
        target, group = "fleet", deployment["thing_group"]
    return {
        "name": raw["name"],
        "target": target,
        "thing_group": group,
        "canary": copy.deepcopy(raw.get("canary")),
        "bake_s": int(raw.get("bake_s", 0)),
        "failure_threshold_percent": float(raw.get("failure_threshold_percent", 0)),
        "verify": bool(raw.get("verify", True)),
        "iot_job": _stage_iot_job(raw, deployment),
    }


def _stage_iot_job(raw: Mapping[str, Any], deployment: Mapping[str, Any]) -> dict[str, Any]:
    """The stage's own keys over the defaults from ``deployment.*``.

    IoT Jobs' abort weighs failures among the things that *finished*, so the default criterion
    (10 % once 1 thing ran) cancels a job at its first failure, devices still installing included.
    That is right for a stage that tolerates no failure (threshold 0, the default); a stage with a
    failure threshold of its own gets no default abort, so its threshold decides, not IoT's. An
    ``abortConfig`` the stage gives is kept as given.
    """
    job = iot_job_from_deployment(deployment)
    if float(raw.get("failure_threshold_percent", 0)) > 0:
        del job["abortConfig"]
    return {**job, **copy.deepcopy(raw.get("iot_job") or {})}


def normalize(
    rollout: Mapping[str, Any] | None, deployment: Mapping[str, Any], canary_default: str = ""
) -> dict[str, Any]:
    """``config.rollout``: ``{"canary_thing_group", "stages": [stage, ...]}``, every field filled."""
    rollout = rollout or {}
    canary_group = rollout.get("canary_thing_group") or default_canary_group(
        deployment["thing_group"], canary_default
    )
    stages = rollout.get("stages") or [{"name": FLEET}]
    return {
        "canary_thing_group": canary_group,
        "fleet_thing_group": deployment["thing_group"],
        "stages": [_stage(raw, deployment, canary_group) for raw in stages],
    }


def stage_of(config: Mapping[str, Any], index: int | None) -> tuple[int, dict[str, Any], int]:
    """(index, stage, number of stages) of the stage ``index`` of ``config`` (an older config
    without ``rollout`` has the single default stage)."""
    rollout = config.get("rollout") or normalize(None, config["deployment"])
    stages = rollout["stages"]
    index = 0 if index is None else int(index)
    if not 0 <= index < len(stages):
        raise IndexError(f"rollout stage {index} does not exist ({len(stages)} stage(s))")
    stage = stages[index]
    if stage["target"] == "fleet":  # deployment.thing_group is the one source of the fleet's name
        stage = {**stage, "thing_group": config["deployment"]["thing_group"]}
    return index, stage, len(stages)
