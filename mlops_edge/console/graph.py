"""A state machine's ASL as a graph for the execution view: nodes, typed edges, nested clusters.

A pure function of the definition, so the page draws whatever state machine an execution ran (the
one `describe_state_machine_for_execution` returns), never a copy of ours. Layout is the browser's
job (dagre, vendored under ``static/vendor/``); this only says what is connected and how:

- ``next`` (``Next``), ``choice`` (a Choice rule, labelled with its condition), ``default`` (a
  Choice's ``Default``), ``catch`` (labelled with the errors it catches) and ``retry`` (a self-loop
  on a Task that retries, labelled with the errors and the attempts);
- Map and Parallel states have clusters: a Map one for its item processor's states, a Parallel one
  per branch, each drawn inside its parent (``parent`` on nodes and clusters), and a ``branch``
  edge from the state to each cluster's first state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["asl_graph", "choice_label"]

_COMPARATORS = {
    "StringEquals": "=",
    "NumericEquals": "=",
    "BooleanEquals": "=",
    "TimestampEquals": "=",
    "NumericLessThan": "<",
    "NumericGreaterThan": ">",
    "NumericLessThanEquals": "≤",
    "NumericGreaterThanEquals": "≥",
    "StringLessThan": "<",
    "StringGreaterThan": ">",
    "TimestampLessThan": "<",
    "TimestampGreaterThan": ">",
}


def _short(path: Any) -> str:
    return str(path).removeprefix("$.").removeprefix("$")


def choice_label(rule: Mapping[str, Any]) -> str:
    """A short condition for a Choice rule: ``training.state = Completed``, ``not (...)``, ``a and b``."""
    if "Not" in rule:
        return f"not ({choice_label(rule['Not'])})"
    for joiner in ("And", "Or"):
        if joiner in rule:
            return f" {joiner.lower()} ".join(choice_label(r) for r in rule[joiner])
    if "Condition" in rule:  # JSONata
        return str(rule["Condition"]).strip("{}% ")
    variable = _short(rule.get("Variable", ""))
    for key, value in rule.items():
        if key in ("Variable", "Next", "Comment", "Assign", "Output"):
            continue
        base = key.removesuffix("Path")
        if base in _COMPARATORS:
            shown = _short(value) if key.endswith("Path") else value
            shown = str(shown).lower() if isinstance(shown, bool) else shown
            return f"{variable} {_COMPARATORS[base]} {shown}"
        if key == "StringMatches":
            return f"{variable} matches {value}"
        if key in ("IsNull", "IsPresent", "IsString", "IsNumeric", "IsBoolean", "IsTimestamp"):
            what = key.removeprefix("Is").lower()
            return f"{variable} is {'' if value else 'not '}{what}"
    return "?"


def _errors(errors: list[str]) -> str:
    return "any error" if errors == ["States.ALL"] else ", ".join(errors)


def asl_graph(asl: Mapping[str, Any]) -> dict[str, Any]:
    """``{"start", "nodes": [...], "edges": [...], "clusters": [...]}`` for an ASL document.

    Node: ``{id, label, type, parent, start, end[, retry]}`` (``retry``: its Retry rules as text); edge: ``{source, target, kind, label}``;
    cluster: ``{id, label, parent}``. State names are unique in a state machine, so a state's
    name is its node id (and what the execution history calls it).
    """
    graph: dict[str, Any] = {"start": asl.get("StartAt"), "nodes": [], "edges": [], "clusters": []}
    _add_states(graph, asl, parent=None)
    return graph


def _add_states(graph: dict[str, Any], machine: Mapping[str, Any], *, parent: str | None) -> None:
    start = machine.get("StartAt")
    for name, state in machine.get("States", {}).items():
        kind = state.get("Type", "Task")
        end = bool(state.get("End")) or kind in ("Succeed", "Fail")
        graph["nodes"].append(
            {"id": name, "label": name, "type": kind, "parent": parent, "start": name == start, "end": end}
        )
        _add_edges(graph, name, state)
        if kind == "Map":
            processor = state.get("ItemProcessor") or state.get("Iterator") or {}
            cluster = f"{name}#items"
            graph["clusters"].append({"id": cluster, "label": f"{name} (each item)", "parent": parent})
            _add_states(graph, processor, parent=cluster)
            _add_branch_edge(graph, name, processor, "each item")
        elif kind == "Parallel":
            for i, branch in enumerate(state.get("Branches", [])):
                cluster = f"{name}#branch{i + 1}"
                graph["clusters"].append({"id": cluster, "label": f"{name} branch {i + 1}", "parent": parent})
                _add_states(graph, branch, parent=cluster)
                _add_branch_edge(graph, name, branch, f"branch {i + 1}")


def _add_branch_edge(graph: dict[str, Any], name: str, machine: Mapping[str, Any], label: str) -> None:
    if machine.get("StartAt"):
        graph["edges"].append(
            {"source": name, "target": machine["StartAt"], "kind": "branch", "label": label}
        )


def _add_edges(graph: dict[str, Any], name: str, state: Mapping[str, Any]) -> None:
    edges: list[dict[str, Any]] = graph["edges"]
    seen = {(e["source"], e["target"], e["kind"]) for e in edges if e["source"] == name}

    def add(target: str, kind: str, label: str = "") -> None:
        key = (name, target, kind)
        if key in seen:
            for edge in edges:  # one edge per pair and kind; labels of several rules joined
                if (edge["source"], edge["target"], edge["kind"]) == key and label:
                    edge["label"] = f"{edge['label']} | {label}" if edge["label"] else label
            return
        seen.add(key)
        edges.append({"source": name, "target": target, "kind": kind, "label": label})

    for rule in state.get("Choices", []):
        add(rule["Next"], "choice", choice_label(rule))
    if "Default" in state:
        add(state["Default"], "default", "otherwise")
    if "Next" in state:
        add(state["Next"], "next")
    for catch in state.get("Catch", []):
        add(catch["Next"], "catch", _errors(catch.get("ErrorEquals", [])))
    rules = [
        f"{_errors(r.get('ErrorEquals', []))} ×{r.get('MaxAttempts', 3)}"
        for r in state.get("Retry", [])
        if r.get("MaxAttempts", 3)
    ]
    if rules:  # one self-loop; the rules themselves are in the node's details
        add(name, "retry", "retry")
        graph["nodes"][-1]["retry"] = rules
