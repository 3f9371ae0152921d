"""The execution graph from ASL: every state a node, every transition an edge of its kind."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from mlops_edge.console.graph import asl_graph, choice_label

GOLDEN = Path(__file__).resolve().parents[1] / "statemachine" / "golden_asl.json"


def test_the_pipeline_graph_has_every_state_and_transition() -> None:
    asl = json.loads(GOLDEN.read_text())
    graph = asl_graph(asl)
    assert [n["id"] for n in graph["nodes"]] == list(asl["States"])
    assert graph["start"] == "Configure"
    kinds = Counter(e["kind"] for e in graph["edges"])
    assert kinds["next"] == sum("Next" in s for s in asl["States"].values())
    assert kinds["default"] == sum("Default" in s for s in asl["States"].values())
    assert kinds["retry"] == sum(bool(s.get("Retry")) for s in asl["States"].values())
    ids = {n["id"] for n in graph["nodes"]}
    assert all(e["source"] in ids and e["target"] in ids for e in graph["edges"])
    fail = next(n for n in graph["nodes"] if n["id"] == "PipelineFailed")
    assert fail["type"] == "Fail" and fail["end"]


def test_choice_catch_and_retry_edges_are_labelled() -> None:
    asl = {
        "StartAt": "Do",
        "States": {
            "Do": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Next": "Check",
                "Retry": [{"ErrorEquals": ["TransientError"], "MaxAttempts": 4}],
                "Catch": [
                    {"ErrorEquals": ["ModelRejected"], "Next": "Failed"},
                    {"ErrorEquals": ["States.ALL"], "Next": "Failed"},
                ],
            },
            "Check": {
                "Type": "Choice",
                "Choices": [
                    {"Variable": "$.training.state", "StringEquals": "Completed", "Next": "Done"},
                    {"Not": {"Variable": "$.n", "NumericLessThanPath": "$.max"}, "Next": "Failed"},
                ],
                "Default": "Do",
            },
            "Done": {"Type": "Succeed"},
            "Failed": {"Type": "Fail", "Error": "X", "Cause": "y"},
        },
    }
    edges = {(e["source"], e["target"], e["kind"]): e["label"] for e in asl_graph(asl)["edges"]}
    assert edges[("Check", "Done", "choice")] == "training.state = Completed"
    assert edges[("Check", "Failed", "choice")] == "not (n < max)"
    assert edges[("Check", "Do", "default")] == "otherwise"
    assert edges[("Do", "Failed", "catch")] == "ModelRejected | any error"  # one edge, both rules
    assert edges[("Do", "Do", "retry")] == "retry"
    node = next(n for n in asl_graph(asl)["nodes"] if n["id"] == "Do")
    assert node["retry"] == ["TransientError ×4"]


def test_map_and_parallel_states_are_nested_clusters() -> None:
    asl = {
        "StartAt": "Fan",
        "States": {
            "Fan": {
                "Type": "Parallel",
                "Next": "Each",
                "Branches": [
                    {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}},
                    {"StartAt": "B", "States": {"B": {"Type": "Pass", "End": True}}},
                ],
            },
            "Each": {
                "Type": "Map",
                "End": True,
                "ItemProcessor": {
                    "StartAt": "Inner",
                    "States": {
                        "Inner": {
                            "Type": "Parallel",
                            "End": True,
                            "Branches": [{"StartAt": "C", "States": {"C": {"Type": "Pass", "End": True}}}],
                        }
                    },
                },
            },
        },
    }
    graph = asl_graph(asl)
    parents = {n["id"]: n["parent"] for n in graph["nodes"]}
    assert parents == {
        "Fan": None,
        "A": "Fan#branch1",
        "B": "Fan#branch2",
        "Each": None,
        "Inner": "Each#items",
        "C": "Inner#branch1",
    }
    clusters = {c["id"]: c["parent"] for c in graph["clusters"]}
    assert clusters == {
        "Fan#branch1": None,
        "Fan#branch2": None,
        "Each#items": None,
        "Inner#branch1": "Each#items",
    }
    branches = {(e["source"], e["target"], e["label"]) for e in graph["edges"] if e["kind"] == "branch"}
    assert branches == {
        ("Fan", "A", "branch 1"),
        ("Fan", "B", "branch 2"),
        ("Each", "Inner", "each item"),
        ("Inner", "C", "branch 1"),
    }


def test_choice_labels_of_every_comparison_family() -> None:
    assert choice_label({"Variable": "$.a", "IsPresent": False}) == "a is not present"
    assert choice_label({"Variable": "$.a", "BooleanEquals": True}) == "a = true"
    assert choice_label(
        {"And": [{"Variable": "$.a", "NumericGreaterThan": 1}, {"Variable": "$.b", "StringMatches": "x*"}]}
    ) == ("a > 1 and b matches x*")
    assert choice_label({"Condition": "{% $x > 1 %}"}) == "$x > 1"
