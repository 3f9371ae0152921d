"""A mermaid flowchart of the ASL, so the README's diagram is generated, never drawn by hand.

``python -m pipeline.statemachine.diagram`` prints it (builds the ASL with placeholder ARNs).
Solid edges are Next/Choice transitions, dotted edges are Catch (labelled with the errors).
"""

from __future__ import annotations

import re
from typing import Any

_SHAPES = {"Choice": ('{"', '"}'), "Fail": ('[["', '"]]'), "Succeed": ('(["', '"])'), "Wait": ('(("', '"))')}


#: Choice comparison operators, as the diagram writes them.
_OPERATORS = {
    "NumericGreaterThanEquals": ">=",
    "NumericGreaterThan": ">",
    "NumericLessThan": "<",
    "NumericLessThanEquals": "<=",
    "NumericEquals": "=",
}


def _node(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "", name)


def mermaid(asl: dict[str, Any]) -> str:
    """``flowchart TD`` text for ``asl`` (states in definition order, edges de-duplicated)."""
    lines = ["flowchart TD"]
    states: dict[str, Any] = asl["States"]
    for name, state in states.items():
        left, right = _SHAPES.get(state["Type"], ('["', '"]'))
        lines.append(f"    {_node(name)}{left}{name}{right}")
    edges: list[str] = []
    for name, state in states.items():
        src = _node(name)
        for choice in state.get("Choices", []):
            label = _condition(choice)
            edges.append(f"    {src} -->|{label}| {_node(choice['Next'])}")
        for key in ("Next", "Default"):
            if key in state:
                edges.append(f"    {src} --> {_node(state[key])}")
        catches: dict[str, list[str]] = {}
        for catch in state.get("Catch", []):
            catches.setdefault(catch["Next"], []).extend(catch["ErrorEquals"])
        for target, errors in catches.items():
            label = "any error" if errors == ["States.ALL"] else "error"
            edges.append(f"    {src} -.->|{label}| {_node(target)}")
    lines.extend(dict.fromkeys(edges))
    return "\n".join(lines) + "\n"


def _condition(choice: dict[str, Any]) -> str:
    variable = str(choice.get("Variable", "")).removeprefix("$.")
    for key, value in choice.items():
        if key in ("Variable", "Next"):
            continue
        if key.endswith("Path"):
            operator = _OPERATORS.get(key.removesuffix("Path"), key)
            return f"{variable} {operator} {str(value).removeprefix('$.')}"
        if key == "IsNull":
            return f"{variable} given" if value is False else f"no {variable}"
        shown = str(value).lower() if isinstance(value, bool) else str(value)
        return f"{variable} = {shown}"
    return "?"


def main() -> None:  # pragma: no cover - developer convenience
    from pipeline.statemachine import FUNCTION_NAMES, plain_asl

    arns = {n: f"arn:aws:lambda:us-east-1:123456789012:function:{n}" for n in FUNCTION_NAMES}
    print(mermaid(plain_asl(arns, sagemaker_role_arn="arn:aws:iam::123456789012:role/sagemaker")), end="")


if __name__ == "__main__":  # pragma: no cover
    main()
