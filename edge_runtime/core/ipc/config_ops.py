"""GetConfiguration and SubscribeToConfigurationUpdate over the core's configuration store."""

from __future__ import annotations

from typing import Any, Protocol

from .exceptions import InvalidArgumentsError, ResourceNotFoundError
from .server import Handler, Stream


class ConfigSource(Protocol):
    """What the handlers need from :class:`edge_runtime.core.config.ConfigStore`."""

    def has_component(self, component: str) -> bool: ...

    def get(self, component: str, key_path: list[str]) -> Any: ...

    def watch(self, component: str, key_path: list[str], callback: Any) -> Any: ...

    def unwatch(self, handle: Any) -> None: ...


_MISSING = object()


def _key_path(req: dict[str, Any]) -> list[str]:
    path = req.get("keyPath") or []
    if not isinstance(path, list) or not all(isinstance(p, str) for p in path):
        raise InvalidArgumentsError("keyPath must be a list of strings")
    return path


def handlers(config: ConfigSource) -> dict[str, Handler]:
    """Reading any component's configuration is allowed, as on the nucleus."""

    def get_configuration(stream: Stream, req: dict[str, Any]) -> None:
        component = req.get("componentName") or stream.component
        path = _key_path(req)
        if not config.has_component(component):
            raise ResourceNotFoundError(f"component {component} not found")
        value = config.get(component, path)
        if value is None:
            raise ResourceNotFoundError(f"key {'/'.join(path)} not found in configuration of {component}")
        if not isinstance(value, dict):  # a leaf comes back keyed by its own name, like the nucleus
            value = {path[-1]: value}
        stream.respond("GetConfigurationResponse", {"componentName": component, "value": value})

    def subscribe_to_configuration_update(stream: Stream, req: dict[str, Any]) -> None:
        component = req.get("componentName") or stream.component
        path = _key_path(req)

        def changed(changed_path: list[str]) -> None:
            event = {"configurationUpdateEvent": {"componentName": component, "keyPath": changed_path}}
            stream.event("ConfigurationUpdateEvents", event)

        handle = config.watch(component, path, changed)
        stream.on_close(lambda: config.unwatch(handle))
        stream.respond("SubscribeToConfigurationUpdateResponse", {}, terminate=False)

    return {
        "GetConfiguration": get_configuration,
        "SubscribeToConfigurationUpdate": subscribe_to_configuration_update,
    }
