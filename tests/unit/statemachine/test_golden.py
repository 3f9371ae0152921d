"""Golden files: the ASL and the state machine's CloudFormation resources, pinned as JSON.

They were written from the definition as it stood before it was split into phases (issue 9), so a
refactoring of ``pipeline/statemachine`` must leave both documents equal as JSON objects: every
state, Retry, Catch, ResultSelector and IAM statement. Order that carries no meaning (the States
map of the synthesized definition, the statements of a policy) is compared as a set; order that
does (``plain_asl``'s States, which the README's generated diagram follows; Choices; Catch) is
compared as is.

A change to the ASL that is meant rewrites them: ``python -m tests.unit.statemachine.test_golden``
— then review the diff of the two JSON files like code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline.statemachine.asl import _evaluate

from .conftest import ACCOUNT, REGION, build_asl, build_template

HERE = Path(__file__).resolve().parent
GOLDEN_ASL = HERE / "golden_asl.json"
GOLDEN_TEMPLATE = HERE / "golden_template.json"

PSEUDO = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT}


def _load(path: Path) -> Any:
    return json.loads(path.read_text())


def _canonical(resources: dict[str, Any]) -> dict[str, Any]:
    """Resources with the definition parsed and policy statements sorted: equal iff equivalent."""
    out: dict[str, Any] = {}
    for logical_id, resource in resources.items():
        resource = json.loads(json.dumps(resource))
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::StepFunctions::StateMachine":
            props["DefinitionString"] = json.loads(_evaluate(props["DefinitionString"], PSEUDO))
        if resource["Type"] == "AWS::IAM::Policy":
            statements = props["PolicyDocument"]["Statement"]
            statements.sort(key=lambda s: json.dumps(s, sort_keys=True))
        out[logical_id] = resource
    return out


def test_plain_asl_equals_golden(asl: dict[str, Any]) -> None:
    golden = _load(GOLDEN_ASL)
    assert asl["StartAt"] == golden["StartAt"]
    assert set(asl["States"]) == set(golden["States"])
    for name, state in golden["States"].items():
        assert asl["States"][name] == state, name
    assert asl == golden


def test_plain_asl_keeps_state_order(asl: dict[str, Any]) -> None:
    """The generated diagram lists states in this order; a new order would be README churn."""
    assert list(asl["States"]) == list(_load(GOLDEN_ASL)["States"])
    assert json.dumps(asl, indent=2) + "\n" == GOLDEN_ASL.read_text()


def test_synthesized_resources_equal_golden(template: Any) -> None:
    resources = template.to_json()["Resources"]
    golden = _load(GOLDEN_TEMPLATE)["Resources"]
    assert set(resources) == set(golden)
    actual, expected = _canonical(resources), _canonical(golden)
    (machine,) = [k for k, r in golden.items() if r["Type"] == "AWS::StepFunctions::StateMachine"]
    definition = actual[machine]["Properties"].pop("DefinitionString")
    expected_definition = expected[machine]["Properties"].pop("DefinitionString")
    assert definition["StartAt"] == expected_definition["StartAt"]
    assert set(definition["States"]) == set(expected_definition["States"])
    for name, state in expected_definition["States"].items():
        assert definition["States"][name] == state, name
    assert definition == expected_definition
    assert actual == expected


def write_golden() -> None:
    """Rewrites both files from the current definition (only for an intended ASL change)."""
    GOLDEN_ASL.write_text(json.dumps(build_asl(), indent=2) + "\n")
    GOLDEN_TEMPLATE.write_text(json.dumps(build_template().to_json(), indent=2) + "\n")


if __name__ == "__main__":  # pragma: no cover - maintenance entry point
    write_golden()
