"""One handler per resource type the local cloud creates from a template (see ``base.py``).

Importing this package imports moto's CloudFormation engine (seconds of imports): the provider
does it on the first CloudFormation request, not at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from local_cloud.services.cloudformation.resources import (
    awslambda,
    events,
    iam,
    iot,
    logs,
    not_emulated,
    s3,
    sagemaker,
    secretsmanager,
    stepfunctions,
)
from local_cloud.services.cloudformation.resources.base import Handler, ResourceFailed, bind

if TYPE_CHECKING:
    from local_cloud.context import ServerContext

__all__ = ["HANDLERS", "NOT_EMULATED", "Handler", "ResourceFailed", "register"]

_MODULES = (awslambda, events, iam, iot, logs, not_emulated, s3, sagemaker, secretsmanager, stepfunctions)

#: Resource type -> its handler: every type the local cloud deploys.
HANDLERS: dict[str, type[Handler]] = {
    cls.TYPE: cls
    for module in _MODULES
    for cls in vars(module).values()
    if isinstance(cls, type) and issubclass(cls, Handler) and cls is not Handler and cls.TYPE
}
NOT_EMULATED = not_emulated.NOT_EMULATED


def register(ctx: ServerContext) -> None:
    """Make moto's engine use these handlers (its model lookups are cached: clear them), and
    check that each type resolves to ours, not to moto's own handler for it."""
    from moto.cloudformation import parsing

    bind(ctx)
    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()
    model_map = parsing.get_model_map()
    shadowed = sorted(t for t, cls in HANDLERS.items() if model_map.get(t) is not cls)
    if shadowed:
        raise RuntimeError(f"moto's CloudFormation does not use the local handlers for {', '.join(shadowed)}")
