"""The pipeline's four phases, each a module that makes and wires its own states.

``prepare`` (configure, train, export, gate, register) → ``package`` (publish components, wait
until DEPLOYABLE) → ``deploy`` (deploy, wait for every device) → ``verify`` (golden requests on the
devices, promote). ``endings`` holds the states more than one phase ends in: the Fail before
Deploy, the Rollback after it, the Succeed.

A phase's ``build`` takes the :class:`~pipeline.statemachine.factory.StateFactory` and the error
handler its Tasks catch into, and returns a :class:`Phase`: its entry state and ``connect``, which
wires its success exit to whatever follows. The exit is a callable rather than a state because
two exits are Choice branches, and a Choice's branch order is part of the ASL (the first match
wins), so the phase adds its branches around the one that leads on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aws_cdk import aws_stepfunctions as sfn


@dataclass(frozen=True)
class Phase:
    """Where a phase starts, and how its success exit reaches the next phase's entry."""

    entry: sfn.State
    connect: Callable[[sfn.IChainable], None]
