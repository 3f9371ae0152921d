"""Recipes, recipe variables, semver resolution, configuration merge."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from components import build
from edge_runtime.core.components import Context, Paths, interpolate, parse_recipe, resolve, satisfies
from edge_runtime.core.components.resolver import best_version
from edge_runtime.core.config import ConfigStore, apply_update
from edge_runtime.core.exceptions import RecipeError, ResolutionError

MODEL = "com.example.Model"
INFERENCE = "com.example.Inference"


def _recipes() -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {MODEL: {}, INFERENCE: {}}
    for v in ("1.0.1", "1.0.2", "1.0.10", "2.0.0"):
        out[MODEL][v] = build.render_recipe(
            "model", component_name=MODEL, component_version=v, artifact_uri=f"s3://b/{v}/model.zip"
        )
    out[INFERENCE]["1.0.5"] = build.render_recipe(
        "inference",
        component_name=INFERENCE,
        component_version="1.0.5",
        artifact_uri="s3://b/i/inference.zip",
        model_component_name=MODEL,
    )
    return out


class FakeCloud:
    def __init__(self) -> None:
        self.recipes = _recipes()
        self.calls: list[tuple[str, str | None, dict[str, str]]] = []

    def __call__(self, name: str, version: str | None, reqs: dict[str, str]) -> dict[str, Any]:
        self.calls.append((name, version, dict(reqs)))
        if version is None:
            version = best_version(list(self.recipes[name]), reqs)
        return self.recipes[name][version]


@pytest.mark.parametrize(
    ("version", "requirement", "ok"),
    [
        ("1.0.10", ">=1.0.0 <2.0.0", True),
        ("2.0.0", ">=1.0.0 <2.0.0", False),
        ("1.2.3", "^1.0.0", True),
        ("1.0.3", "~1.0.0", True),
        ("1.1.0", "~1.0.0", False),
        ("1.0.4", "1.0.4", True),
        ("1.0.4", "1.0.x", True),
        ("not-a-version", "*", False),
    ],
)
def test_npm_style_ranges(version: str, requirement: str, ok: bool) -> None:
    assert satisfies(version, requirement) is ok


def test_best_version_is_semver_not_lexical() -> None:
    assert best_version(["1.0.2", "1.0.10", "1.0.9"], {"x": "^1.0.0"}) == "1.0.10"
    assert best_version(["2.0.0"], {"x": "^1.0.0"}) is None


def test_pinned_model_within_the_inference_range() -> None:
    cloud = FakeCloud()
    res = resolve({MODEL: {"group": "1.0.2"}, INFERENCE: {"group": "1.0.5"}}, cloud)
    assert res.versions == {MODEL: "1.0.2", INFERENCE: "1.0.5"}
    assert res.requirements[MODEL] == {"group": "1.0.2", INFERENCE: build.DEFAULT_MODEL_VERSION_REQUIREMENT}
    assert res.dependencies_first() == [MODEL, INFERENCE]


def test_unpinned_dependency_takes_the_best_version_in_range() -> None:
    res = resolve({INFERENCE: {"group": "1.0.5"}}, FakeCloud())
    assert res.versions[MODEL] == "1.0.10"


def test_pinned_model_outside_the_range_fails_before_anything_runs() -> None:
    with pytest.raises(ResolutionError, match="does not satisfy"):
        resolve({MODEL: {"group": "2.0.0"}, INFERENCE: {"group": "1.0.5"}}, FakeCloud())


def test_conflicting_pins_fail() -> None:
    with pytest.raises(ResolutionError):
        resolve({MODEL: {"g1": "1.0.1", "g2": "1.0.2"}}, FakeCloud())


def test_recipe_parsing_is_case_insensitive_and_picks_linux() -> None:
    raw = {
        "recipeformatversion": "2020-01-25",
        "componentname": "a",
        "componentversion": "1.0.0",
        "componentdependencies": {"b": {"versionrequirement": "^1.0.0"}},
        "manifests": [
            {"platform": {"os": "windows"}, "lifecycle": {"run": "win"}},
            {
                "platform": {"os": "linux"},
                "artifacts": [{"uri": "s3://x/y/code.zip", "unarchive": "zip"}],
                "lifecycle": {"run": "lin"},
            },
        ],
    }
    recipe = parse_recipe(raw)
    assert recipe.lifecycle == {"run": "lin"}
    assert recipe.dependencies == {"b": ("^1.0.0", "HARD")}
    assert recipe.artifacts[0].unarchive == "ZIP" and recipe.artifacts[0].unarchive_dir == "code"
    with pytest.raises(RecipeError):
        parse_recipe({**raw, "recipeformatversion": "2019-01-01"})


def test_recipe_variables(tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    configs = {"a": {"Topic": "t/1", "Nested": {"n": 5}}, "b": {"Key": "v"}}
    ctx = Context("a", {"a": "1.0.0", "b": "2.0.0"}, lambda c: configs.get(c, {}), paths, "thing-1")
    text = (
        "{artifacts:path} {artifacts:decompressedPath} {work:path} {kernel:rootPath} {iot:thingName} "
        "{configuration:/Topic} {configuration:/Nested} {b:artifacts:decompressedPath} {b:configuration:/Key} "
        "{b:work:path} {configuration:/Missing} {c:artifacts:path}"
    )
    assert interpolate(text, ctx).split() == [
        str(tmp_path / "packages/artifacts/a/1.0.0"),
        str(tmp_path / "packages/artifacts-unarchived/a/1.0.0"),
        str(tmp_path / "work/a"),
        str(tmp_path),
        "thing-1",
        "t/1",
        '{"n":',
        "5}",
        str(tmp_path / "packages/artifacts-unarchived/b/2.0.0"),
        "v",
        str(tmp_path / "work/b"),
        "{configuration:/Missing}",
        "{c:artifacts:path}",
    ]


def test_configuration_update_merge_and_reset() -> None:
    default = {"A": 1, "B": {"x": 1, "y": 2}, "C": "c"}
    first = apply_update(default, None, {"merge": '{"B": {"x": 10}, "D": 4}'})
    assert first == {"A": 1, "B": {"x": 10, "y": 2}, "C": "c", "D": 4}
    second = apply_update(default, first, {"reset": ["/B/x", "/D"], "merge": {"A": 2}})
    assert second == {"A": 2, "B": {"x": 1, "y": 2}, "C": "c"}
    assert apply_update(default, second, {"reset": [""]}) == default


def test_config_store_notifies_changed_keys() -> None:
    store = ConfigStore()
    store.set("a", {"k": 1, "n": {"x": 1}})
    seen: list[list[str]] = []
    handle = store.watch("a", [], seen.append)
    store.set("a", {"k": 2, "n": {"x": 1}})
    store.unwatch(handle)
    store.set("a", {"k": 3})
    assert seen == [["k"]]
    assert store.get("a", ["k"]) == 3 and store.get("a", ["nope"]) is None
