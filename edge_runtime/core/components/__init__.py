"""Component management: recipes, variables, dependency resolution, the on-disk store, the cloud."""

from .cloud import Cloud
from .interpolation import Context, Paths, interpolate, interpolate_tree, json_pointer
from .recipe import Artifact, Recipe, ci, parse_recipe
from .resolver import Resolution, best_version, resolve, satisfies
from .store import ComponentStore, digest_b64

__all__ = [
    "Artifact",
    "Cloud",
    "ComponentStore",
    "Context",
    "Paths",
    "Recipe",
    "Resolution",
    "best_version",
    "ci",
    "digest_b64",
    "interpolate",
    "interpolate_tree",
    "json_pointer",
    "parse_recipe",
    "resolve",
    "satisfies",
]
