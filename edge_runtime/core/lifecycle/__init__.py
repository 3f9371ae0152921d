"""Component lifecycle: the state table, lifecycle steps, the per-component supervisor."""

from .service import ComponentService
from .states import MAX_ERRORS, TRANSITIONS, IllegalTransition, State, check_transition
from .steps import Step, parse_lifecycle

__all__ = [
    "MAX_ERRORS",
    "TRANSITIONS",
    "ComponentService",
    "IllegalTransition",
    "State",
    "Step",
    "check_transition",
    "parse_lifecycle",
]
