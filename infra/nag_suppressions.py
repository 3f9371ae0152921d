"""Every cdk-nag suppression of the app, each with its reason, in one place."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Stack


def apply_suppressions(stacks: Mapping[str, Stack]) -> None:
    """Attach the documented suppressions to the stacks (keys: pipeline, edge, cicd)."""
