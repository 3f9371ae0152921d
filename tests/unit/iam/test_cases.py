"""JSON case files (``cases/*.json``) run by one loader, as iam-simulate keeps its tests.

A file holds named ``policies`` ({"kind": "identity"|"resource", "document": {...}}) and
``cases``: the policies a request is evaluated against, the request (principal, action,
resources, context), and what is expected: ``Allowed``, ``ImplicitlyDenied``,
``ExplicitlyDenied`` with the deciding statements (``policy#sid`` or ``policy#index``) and,
optionally, the resource the decision is about; or ``raises`` with the error's class name.
Adding a case is adding JSON; the loader asserts every field it is given.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from local_cloud import iam
from local_cloud.iam import PolicyKind, decide, parse_policy, request_for

CASES = Path(__file__).parent / "cases"


def _load() -> list[Any]:
    params = []
    for path in sorted(CASES.glob("*.json")):
        data = json.loads(path.read_text())
        for case in data["cases"]:
            params.append(pytest.param(data["policies"], case, id=f"{path.stem}: {case['name']}"))
    return params


@pytest.mark.parametrize(("library", "case"), _load())
def test_case(library: dict[str, Any], case: dict[str, Any]) -> None:
    policies = [
        parse_policy(library[name]["document"], name=name, kind=PolicyKind(f"{library[name]['kind']}-based"))
        for name in case["policies"]
    ]
    req = case["request"]
    if case["expect"] == "raises":
        with pytest.raises(getattr(iam, case["raises"])):
            decide(request_for(req["principal"], req["action"], req["resources"], req["context"]), policies)
        return
    decision = decide(
        request_for(req["principal"], req["action"], req["resources"], req["context"]), policies
    )
    assert decision.kind == case["expect"]
    assert [str(s) for s in decision.statements] == case["statements"]
    if "resource" in case:
        assert decision.resource == case["resource"]


def test_every_file_has_cases_of_each_outcome() -> None:
    """The case files exercise all three outcomes (a loader that skipped everything would pass)."""
    outcomes = {c.values[1]["expect"] for c in _load()}
    assert {"Allowed", "ImplicitlyDenied", "ExplicitlyDenied", "raises"} <= outcomes
    assert len(_load()) >= 60
