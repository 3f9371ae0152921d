"""Per-role (per-function) IAM usage from the decision log: what was used, granted but never used,
refused — least-privilege hints for a run report.

``iam_usage(log_path, roles)`` reads the JSON Lines log the endpoint writes
(``<state dir>/iam/decisions.jsonl``, see ``enforce.log``) and, for each label in ``roles``
(``{"ExportOnnx": "arn:aws:iam::…:role/…", …}``; a role name works too), returns:

- ``used``: actions allowed to the role's sessions (the operation's action and the dependent
  actions checked with it);
- ``granted_unused``: actions the role's identity policies allow but no call used. Allow
  statements' action patterns are expanded against the IAM dataset (``s3:Get*`` → every
  ``s3:Get…`` action) when that gives at most ``EXPAND_LIMIT`` actions; broader patterns
  (``s3:*``, ``*``) are listed as written unless a used action matches them. Resources and
  conditions are not considered: an action counts as granted if some statement allows it somewhere;
- ``refused``: actions denied to the role's sessions — refused in enforce mode, or that would have
  been in audit mode;
- ``undecided``: operations the local cloud could not decide (``service:Operation``: the cause is
  in the log).

When several labels share a role, records are attributed by session name: Lambda names a
function's session after the function, the local cloud names the state machine's after the state
machine; a label that matches no session name gets every record of its role. The policies come
from the log's latest ``policies`` snapshot of the role; ``iam`` (a boto3 IAM client) is read
for roles that made no call. All lists are sorted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from local_cloud.iam.dataset import dataset
from local_cloud.iam.matching import action_matches

EXPAND_LIMIT = 40
Usage = dict[str, list[str]]


def iam_usage(log_path: Path | str, roles: Mapping[str, str], *, iam: Any = None) -> dict[str, Usage]:
    """``{label: {"used", "granted_unused", "refused", "undecided"}}`` (see the module doc)."""
    records = list(_read(Path(log_path)))
    snapshots: dict[str, list[Mapping[str, Any]]] = {}
    calls: list[Mapping[str, Any]] = []
    for record in records:
        kind = record.get("type")
        if kind == "policies":
            snapshots[str(record.get("role"))] = list(record.get("policies") or [])
        elif kind in ("decision", "error") and record.get("role"):
            calls.append(record)
    out: dict[str, Usage] = {}
    for label, role in roles.items():
        mine = [r for r in calls if _same_role(str(r["role"]), role)]
        if any(r.get("session") == label for r in mine):
            mine = [r for r in mine if r.get("session") == label]
        decisions = [r for r in mine if r.get("type") == "decision"]
        used = sorted({str(r["action"]) for r in decisions if r.get("decision") == "Allowed"})
        refused = sorted({str(r["action"]) for r in decisions if r.get("decision") != "Allowed"})
        undecided = sorted(
            {f"{r.get('service')}:{r.get('operation')}" for r in mine if r.get("type") == "error"}
        )
        documents = _snapshot(snapshots, role)
        if documents is None and iam is not None:
            documents = _read_policies(iam, role)
        granted = granted_actions(documents or [])
        out[label] = {
            "used": used,
            "granted_unused": _unused(granted, used),
            "refused": refused,
            "undecided": undecided,
        }
    return out


def granted_actions(documents: Iterable[Mapping[str, Any]]) -> list[str]:
    """Actions (or broad patterns, see the module doc) that Allow statements of the policy
    documents (``{"document": …}`` entries or bare documents) grant."""
    found: set[str] = set()
    for entry in documents:
        document = entry.get("document", entry)
        if isinstance(document, str):
            document = json.loads(document)
        statements = document.get("Statement", [])
        for st in [statements] if isinstance(statements, Mapping) else statements:
            if st.get("Effect") != "Allow" or "Action" not in st:
                continue
            patterns = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            for pattern in patterns:
                found.update(expand_action(str(pattern)))
    return sorted(found, key=str.lower)


def expand_action(pattern: str) -> list[str]:
    """``s3:Get*`` → the dataset's matching actions (at most ``EXPAND_LIMIT``, else the pattern)."""
    if "*" not in pattern and "?" not in pattern:
        return [pattern]
    prefix, _, _ = pattern.partition(":")
    if not prefix or "*" in prefix or "?" in prefix:
        return [pattern]
    matched = [a for a in dataset().actions(prefix) if action_matches(pattern, a)]
    if not matched or len(matched) > EXPAND_LIMIT:
        return [pattern]
    return matched


def _unused(granted: list[str], used: list[str]) -> list[str]:
    used_lower = {u.lower() for u in used}
    out = []
    for action in granted:
        if "*" in action or "?" in action:
            if not any(action_matches(action, u) for u in used):
                out.append(action)
        elif action.lower() not in used_lower:
            out.append(action)
    return sorted(out, key=str.lower)


def _same_role(logged: str, wanted: str) -> bool:
    if wanted.startswith("arn:"):
        return logged == wanted
    return logged.rsplit("/", 1)[-1] == wanted


def _snapshot(snapshots: Mapping[str, list[Mapping[str, Any]]], role: str) -> list[Mapping[str, Any]] | None:
    for arn, documents in snapshots.items():
        if _same_role(arn, role):
            return documents
    return None


def _read_policies(iam: Any, role: str) -> list[Mapping[str, Any]]:
    name = role.rsplit("/", 1)[-1]
    documents: list[Mapping[str, Any]] = []
    for page in iam.get_paginator("list_role_policies").paginate(RoleName=name):
        for policy in page["PolicyNames"]:
            documents.append(iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"])
    for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=name):
        for attached in page["AttachedPolicies"]:
            arn = attached["PolicyArn"]
            version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
            documents.append(
                iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
            )
    return documents


def _read(path: Path) -> Iterable[Mapping[str, Any]]:
    if not path.exists():
        return
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a stop mid-write
            if isinstance(record, dict):
                yield record
