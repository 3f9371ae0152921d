"""The run report's IAM section words what the local cloud decided for each role."""

from __future__ import annotations

from mlops_edge.report.iam import iam_markdown, iam_summary_line

SECTION = {
    "log": "/tmp/decisions.jsonl",
    "roles": {
        "mlops-edge-pipeline-deploy": {
            "used": ["greengrass:CreateDeployment", "iot:CreateJob"],
            "granted_unused": ["iot:CancelJob"],
            "refused": [],
            "undecided": [],
        },
        "mlops-edge-pipeline": {
            "used": ["lambda:InvokeFunction"],
            "granted_unused": [],
            "refused": [],
            "undecided": [],
        },
    },
}


def test_a_clean_run_says_no_refusal_and_counts_the_unused_grants() -> None:
    assert iam_summary_line(SECTION) == "2 roles, no refusal; 1 granted actions never used (see report.md)"


def test_a_refusal_is_named_with_its_role_and_action() -> None:
    refused = {**SECTION, "roles": {**SECTION["roles"]}}
    refused["roles"]["mlops-edge-pipeline"] = {
        **SECTION["roles"]["mlops-edge-pipeline"],
        "refused": ["lambda:InvokeFunction"],
    }
    assert iam_summary_line(refused) == "refused mlops-edge-pipeline: lambda:InvokeFunction"


def test_markdown_has_a_row_per_role() -> None:
    lines = iam_markdown(SECTION)
    assert (
        "| mlops-edge-pipeline-deploy | greengrass:CreateDeployment, iot:CreateJob | iot:CancelJob | — |"
        in lines
    )
    assert iam_markdown({}) == []
