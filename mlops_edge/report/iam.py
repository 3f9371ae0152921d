"""The run report's IAM section: per function (and the state machine), what its role used, what it
was granted and never used (least-privilege hints), and what was refused.

The section is read from the local cloud's decision log by the run (``local_cloud.iam.iam_usage``:
``{"log", "roles": {label: {used, granted_unused, refused, undecided}}}``), so the figures are what
the endpoint decided for each role session during the run, not a reading of the template; this
module only words it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["iam_markdown", "iam_summary_line"]


def _count(section: Mapping[str, Any], key: str) -> int:
    return sum(len(u.get(key) or []) for u in (section.get("roles") or {}).values())


def iam_summary_line(section: Mapping[str, Any]) -> str:
    """One line for the console: refusals first, since each one is a run that fails on AWS too."""
    roles = section.get("roles") or {}
    refused = {label: u["refused"] for label, u in roles.items() if u.get("refused")}
    unused = _count(section, "granted_unused")
    if refused:
        named = "; ".join(f"{label}: {', '.join(actions)}" for label, actions in sorted(refused.items()))
        return f"refused {named}"
    return f"{len(roles)} roles, no refusal; {unused} granted actions never used (see report.md)"


def iam_markdown(section: Mapping[str, Any]) -> list[str]:
    roles = section.get("roles") or {}
    if not roles:
        return []
    lines = ["", "## IAM (what each role used, as the local cloud decided)", ""]
    lines += ["| role of | used | granted, never used | refused |", "|---|---|---|---|"]
    for label, usage in sorted(roles.items()):
        cells = [", ".join(usage.get(k) or []) or "—" for k in ("used", "granted_unused", "refused")]
        lines.append(f"| {label} | {' | '.join(cells)} |")
    return lines
