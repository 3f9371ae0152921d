"""XGBoost booster -> ``model.accel.onnx``: the ensemble as perfect trees for the mlops_edge.trees op.

The accelerated engine (edge_runtime/inference/accel/trees.c) walks every tree as the perfect
binary tree of that tree's own depth D: heap order with the root at 1, ``g = 2g + yes`` per level,
leaf ``g - 2^D``. This module pads each tree of the booster's JSON dump to that shape: a leaf
reached above depth D is copied into every leaf position below it (so the padding nodes' tests
cannot change the answer), each split keeps XGBoost's rule (``x < threshold`` is "yes", the left
child; a missing value takes the node's default child, kept as bit 31 of the feature word).

The starting margin (``base_values``) is asked of XGBoost itself: the margin it predicts minus the
margin with an explicit zero ``base_margin``. That is exact for every objective and release,
where decoding ``base_score`` would have to track how each objective and version stores it.

Models the kernel does not take get no variant, and ``unsupported_reason`` says why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from edge_runtime.inference.accel import (
    API_VERSION,
    DOMAIN,
    MAX_DEPTH,
    MAX_FEATURES,
    OP_CLASSIFIER,
    OP_REGRESSOR,
)

__all__ = ["PerfectTrees", "build_model", "from_booster", "unsupported_reason"]

#: Objectives whose prediction is the margin itself (regression), its sigmoid or its softmax.
_OBJECTIVES = {
    "regression": {"reg:squarederror", "reg:absoluteerror", "reg:pseudohubererror", "reg:quantileerror"},
    "binary": {"binary:logistic"},
    "multiclass": {"multi:softprob"},
}
_MISSING_YES = 1 << 31


@dataclass(frozen=True)
class PerfectTrees:
    """The op's attributes (see trees.c's header comment for each one's meaning)."""

    n_features: int
    n_targets: int
    post_transform: int
    base_values: list[float]
    tree_depths: list[int]
    tree_targets: list[int]
    node_features: list[int]
    node_thresholds: list[float]
    leaf_values: list[float]


def _dump(booster: object) -> dict:
    return json.loads(bytes(booster.save_raw("json")))


def unsupported_reason(booster: object, task: str, hyperparameters: dict | None = None) -> str | None:
    """Why the kernel cannot run this model, or None when it can."""
    doc = _dump(booster)["learner"]
    gb = doc["gradient_booster"]
    if gb.get("name") != "gbtree":
        return f"booster {gb.get('name')!r}: the kernel evaluates plain gbtree ensembles only"
    objective = doc.get("objective", {}).get("name")
    if objective not in _OBJECTIVES[task]:
        return f"objective {objective!r} is not one the kernel reproduces for a {task} model"
    if str((hyperparameters or {}).get("grow_policy", "depthwise")) == "lossguide":
        return "grow_policy lossguide: its trees grow deep and unbalanced, which perfect trees cannot hold"
    if int(booster.num_features()) > MAX_FEATURES:
        return f"{booster.num_features()} features: the kernel indexes at most {MAX_FEATURES}"
    trees = gb["model"]["trees"]
    if any(any(int(t) != 0 for t in tree.get("split_type", [])) for tree in trees):
        return "the model has categorical splits, which the kernel does not evaluate"
    deepest = max((_depth(tree) for tree in trees), default=0)
    if deepest > MAX_DEPTH:
        return f"a tree of depth {deepest}: the kernel takes depth <= {MAX_DEPTH}"
    return None


def _depth(tree: dict) -> int:
    left, right = tree["left_children"], tree["right_children"]
    deepest, stack = 0, [(0, 0)]
    while stack:
        node, depth = stack.pop()
        if left[node] == -1:
            deepest = max(deepest, depth)
        else:
            stack += [(left[node], depth + 1), (right[node], depth + 1)]
    return deepest


def _pad(tree: dict, depth: int) -> tuple[list[int], list[float], list[float]]:
    """One tree as heap-ordered internal nodes 1..2^D-1 (returned from index 0) and 2^D leaves."""
    width = 1 << depth
    feats, thresholds, leaves = [0] * width, [0.0] * width, [0.0] * width
    left, right = tree["left_children"], tree["right_children"]
    index, cond, default_left = tree["split_indices"], tree["split_conditions"], tree["default_left"]
    stack = [(0, 1, 0)]
    while stack:
        node, g, level = stack.pop()
        if left[node] == -1:  # a leaf: its value fills every leaf position below heap slot g
            span = 1 << (depth - level)
            first = g * span - width
            leaves[first : first + span] = [float(cond[node])] * span
            continue
        feats[g] = int(index[node]) | (_MISSING_YES if int(default_left[node]) else 0)
        thresholds[g] = float(cond[node])
        stack += [(left[node], 2 * g + 1, level + 1), (right[node], 2 * g, level + 1)]
    return feats[1:], thresholds[1:], leaves


def _base_margin(booster: object, x: np.ndarray, n_targets: int) -> list[float]:
    """XGBoost's own starting margin: its margin minus the margin from an explicit zero base."""
    import xgboost as xgb

    rows = np.ascontiguousarray(x[: min(len(x), 64)], dtype=np.float32)
    if len(rows) == 0:
        rows = np.zeros((1, booster.num_features()), dtype=np.float32)
    zero = np.zeros((len(rows), n_targets) if n_targets > 1 else len(rows), dtype=np.float32)
    full = booster.predict(xgb.DMatrix(rows, missing=np.nan), output_margin=True, validate_features=False)
    trees = booster.predict(
        xgb.DMatrix(rows, missing=np.nan, base_margin=zero), output_margin=True, validate_features=False
    )
    diff = np.asarray(full, dtype=np.float64).reshape(len(rows), -1) - np.asarray(trees, np.float64).reshape(
        len(rows), -1
    )
    return [float(v) for v in np.median(diff, axis=0)]


def from_booster(booster: object, task: str, x_sample: np.ndarray) -> PerfectTrees:
    """The op's attributes for a supported booster (check ``unsupported_reason`` first)."""
    gb = _dump(booster)["learner"]["gradient_booster"]["model"]
    trees, info = gb["trees"], [int(t) for t in gb["tree_info"]]
    n_targets = max(info, default=0) + 1 if task == "multiclass" else 1
    depths, feats, thresholds, leaves = [], [], [], []
    for tree in trees:
        depth = _depth(tree)
        f, t, v = _pad(tree, depth)
        depths.append(depth)
        feats += f
        thresholds += t
        leaves += v
    return PerfectTrees(
        n_features=int(booster.num_features()),
        n_targets=n_targets,
        post_transform={"regression": 0, "binary": 1, "multiclass": 2}[task],
        base_values=_base_margin(booster, x_sample, n_targets),
        tree_depths=depths,
        tree_targets=info if task == "multiclass" else [0] * len(trees),
        node_features=feats,
        node_thresholds=thresholds,
        leaf_values=leaves,
    )


def build_model(trees: PerfectTrees, input_name: str, output_names: list[str], opset: int) -> bytes:
    """A one-node ONNX graph with the standard model's input and output names, types and shapes."""
    from onnx import TensorProto, helper

    classifier = trees.post_transform != 0
    width = 2 if trees.post_transform == 1 else trees.n_targets
    node = helper.make_node(
        OP_CLASSIFIER if classifier else OP_REGRESSOR,
        [input_name],
        list(output_names),
        domain=DOMAIN,
        n_features=trees.n_features,
        n_targets=trees.n_targets,
        post_transform=trees.post_transform,
        base_values=trees.base_values,
        tree_depths=trees.tree_depths,
        tree_targets=trees.tree_targets,
        node_features=trees.node_features,
        node_thresholds=trees.node_thresholds,
        leaf_values=trees.leaf_values,
    )
    if classifier:
        outputs = [
            helper.make_tensor_value_info(output_names[0], TensorProto.INT64, [None]),
            helper.make_tensor_value_info(output_names[1], TensorProto.FLOAT, [None, width]),
        ]
    else:
        outputs = [helper.make_tensor_value_info(output_names[0], TensorProto.FLOAT, [None, 1])]
    graph = helper.make_graph(
        [node],
        "perfect_trees",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [None, trees.n_features])],
        outputs,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid(DOMAIN, 1)],
        producer_name="mlops-edge",
        doc_string=f"mlops_edge.trees custom op (C API version {API_VERSION}); needs its library",
    )
    model.ir_version = 8
    return model.SerializeToString()
