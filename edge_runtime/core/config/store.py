"""Component configuration: defaults, deployment merge/reset, change notifications.

Greengrass semantics: a component's configuration starts from its recipe's DefaultConfiguration
(or from what it had before), ``reset`` paths go back to the default, then ``merge`` is
deep-merged on top. Subscribers (IPC SubscribeToConfigurationUpdate) hear about changed keys.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable
from itertools import count
from typing import Any

from ..components.interpolation import json_pointer
from ..exceptions import InvalidDeployment


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``update`` merged into a copy of ``base``; maps merge, everything else replaces."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _reset(config: dict[str, Any], default: dict[str, Any], pointer: str) -> dict[str, Any]:
    if pointer in ("", "/"):
        return copy.deepcopy(default)
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.lstrip("/").split("/")]
    node = config
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            return config
        node = node[part]
    default_value = json_pointer(default, pointer)
    if default_value is None:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = copy.deepcopy(default_value)
    return config


def apply_update(
    default: dict[str, Any], previous: dict[str, Any] | None, update: dict[str, Any] | None
) -> dict[str, Any]:
    """The configuration a deployment gives a component (``configurationUpdate`` = merge/reset)."""
    config = deep_merge(default, previous) if previous is not None else copy.deepcopy(default)
    update = update or {}
    for pointer in update.get("reset") or []:
        config = _reset(config, default, str(pointer))
    merge = update.get("merge")
    if isinstance(merge, str) and merge.strip():
        try:
            merge = json.loads(merge)
        except ValueError as exc:
            raise InvalidDeployment(f"configurationUpdate.merge is not JSON: {exc}") from exc
    if isinstance(merge, dict):
        config = deep_merge(config, merge)
    elif merge not in (None, ""):
        raise InvalidDeployment("configurationUpdate.merge must be a JSON object")
    return config


def _changed_paths(old: Any, new: Any, prefix: tuple[str, ...] = ()) -> list[list[str]]:
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[list[str]] = []
        for key in sorted(set(old) | set(new)):
            out += _changed_paths(old.get(key), new.get(key), (*prefix, key))
        return out
    return [] if old == new else [list(prefix)]


class ConfigStore:
    """Thread-safe configuration of every component, with watchers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data: dict[str, dict[str, Any]] = {}
        self._watchers: dict[int, tuple[str, list[str], Callable[[list[str]], None]]] = {}
        self._ids = count(1)

    def has_component(self, component: str) -> bool:
        with self._lock:
            return component in self._data

    def component(self, component: str) -> dict[str, Any]:
        """A copy of one component's configuration ({} when unknown)."""
        with self._lock:
            return copy.deepcopy(self._data.get(component, {}))

    def get(self, component: str, key_path: list[str]) -> Any:
        with self._lock:
            node: Any = self._data.get(component)
            for key in key_path:
                node = node.get(key) if isinstance(node, dict) else None
            return copy.deepcopy(node)

    def set(self, component: str, config: dict[str, Any]) -> None:
        """Replace a component's configuration and notify watchers of what changed."""
        with self._lock:
            old = self._data.get(component, {})
            self._data[component] = copy.deepcopy(config)
            watchers = [w for w in self._watchers.values() if w[0] == component]
        changed = _changed_paths(old, config)
        for _, prefix, callback in watchers:
            for path in changed:
                if path[: len(prefix)] == prefix or prefix[: len(path)] == path:
                    callback(path)

    def remove(self, component: str) -> None:
        with self._lock:
            self._data.pop(component, None)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._data)

    def watch(self, component: str, key_path: list[str], callback: Callable[[list[str]], None]) -> int:
        handle = next(self._ids)
        with self._lock:
            self._watchers[handle] = (component, list(key_path), callback)
        return handle

    def unwatch(self, handle: int) -> None:
        with self._lock:
            self._watchers.pop(handle, None)
