"""Fuzzed payloads: seeded, valid and invalid mixed, each with the id its answer will carry."""

from __future__ import annotations

import json
import random
from typing import Any


class Fuzzer:
    """Seeded payloads, valid and invalid mixed; each with the id its answer will carry (or None)."""

    def __init__(self, rows: list[list[float]], features: list[str], seed: int = 13) -> None:
        self.rng = random.Random(seed)
        self.rows, self.features = rows, features
        self.n = 0

    def _id(self) -> str:
        self.n += 1
        return f"fz-{self.n}"

    def _row(self) -> list[Any]:
        return list(self.rng.choice(self.rows))

    def payload(self) -> tuple[bytes, str | None]:
        kind = self.rng.choice(_KINDS)
        return getattr(self, f"_{kind}")()

    def _dumps(self, doc: Any) -> bytes:
        return json.dumps(doc).encode()

    # answered with the id -----------------------------------------------------------------
    def _row_ok(self) -> tuple[bytes, str | None]:
        rid = self._id()
        return self._dumps({"id": rid, "instances": [self._row()]}), rid

    def _records_ok(self) -> tuple[bytes, str | None]:
        rid = self._id()
        return self._dumps({"id": rid, "records": [dict(zip(self.features, self._row(), strict=True))]}), rid

    def _batch_ok(self) -> tuple[bytes, str | None]:
        rid = self._id()
        return self._dumps({"id": rid, "rows": [self._row() for _ in range(self.rng.randint(1, 8))]}), rid

    def _body_ok(self) -> tuple[bytes, str | None]:
        rid = self._id()
        return self._dumps({"body": json.dumps({"id": rid, "rows": [self._row()]})}), rid

    def _missing_values(self) -> tuple[bytes, str | None]:
        rid, row = self._id(), self._row()
        row[self.rng.randrange(len(row))] = None
        return self._dumps({"id": rid, "instances": [row]}), rid

    def _nan_literal(self) -> tuple[bytes, str | None]:
        rid = self._id()
        values = ",".join(["NaN"] + [str(v) for v in self._row()[1:]])
        return f'{{"id": "{rid}", "rows": [[{values}]]}}'.encode(), rid

    def _wrong_length(self) -> tuple[bytes, str | None]:
        rid, row = self._id(), self._row()
        row = row[:-1] if self.rng.random() < 0.5 else [*row, 0.0]
        return self._dumps({"id": rid, "instances": [row]}), rid

    def _wrong_type(self) -> tuple[bytes, str | None]:
        rid, row = self._id(), self._row()
        row[self.rng.randrange(len(row))] = self.rng.choice(["x", True, [1], {"a": 1}, ""])
        return self._dumps({"id": rid, "instances": [row]}), rid

    def _unknown_feature(self) -> tuple[bytes, str | None]:
        rid = self._id()
        record = dict(zip(self.features, self._row(), strict=True))
        record["not-a-feature"] = 1.0
        return self._dumps({"id": rid, "records": [record]}), rid

    def _non_finite(self) -> tuple[bytes, str | None]:
        rid, row = self._id(), self._row()
        row[0] = self.rng.choice([1e39, -1e300])
        return self._dumps({"id": rid, "instances": [row]}), rid

    def _empty_rows(self) -> tuple[bytes, str | None]:
        rid = self._id()
        return self._dumps({"id": rid, "instances": self.rng.choice([[], [[]], {}])}), rid

    def _ambiguous(self) -> tuple[bytes, str | None]:
        rid = self._id()
        return self._dumps({"id": rid, "rows": [self._row()], "records": []}), rid

    def _too_many_rows(self) -> tuple[bytes, str | None]:
        rid = self._id()
        return self._dumps({"id": rid, "rows": [[0.0] * len(self.features)] * 4097}), rid

    def _deep_inside(self) -> tuple[bytes, str | None]:
        rid, depth = self._id(), self.rng.choice([50, 500])
        return f'{{"id": "{rid}", "instances": {"[" * depth}1{"]" * depth}}}'.encode(), rid

    def _unicode_id(self) -> tuple[bytes, str | None]:
        rid = f"{self._id()}-ünï-😀-{'x' * self.rng.choice([1, 200])}"  # ids are at most 256 characters
        return self._dumps({"id": rid, "rows": [self._row()]}), rid

    def _duplicate_key(self) -> tuple[bytes, str | None]:
        first, last = self._id(), self._id()
        return f'{{"id": "{first}", "rows": [{json.dumps(self._row())}], "id": "{last}"}}'.encode(), last

    # answered with a null id --------------------------------------------------------------
    def _no_id(self) -> tuple[bytes, str | None]:
        return self._dumps(self.rng.choice([{"rows": [self._row()]}, {}, {"id": ""}])), None

    def _id_too_long(self) -> tuple[bytes, str | None]:
        return self._dumps(
            {"id": f"{self._id()}-{'x' * self.rng.choice([300, 5000])}", "rows": [self._row()]}
        ), None

    def _id_not_a_string(self) -> tuple[bytes, str | None]:
        return self._dumps(
            {"id": self.rng.choice([5, None, True, [], {"x": 1}]), "rows": [self._row()]}
        ), None

    def _garbage(self) -> tuple[bytes, str | None]:
        return bytes(self.rng.randrange(256) for _ in range(self.rng.randint(1, 200))), None

    def _truncated(self) -> tuple[bytes, str | None]:
        text = self._dumps({"id": self._id(), "rows": [self._row()]})
        return text[: self.rng.randint(1, len(text) - 1)], None

    def _not_an_object(self) -> tuple[bytes, str | None]:
        return self.rng.choice([b"[1, 2]", b'"text"', b"123", b"null", b"true", b" ", b""]), None

    def _deep_top(self) -> tuple[bytes, str | None]:
        depth = self.rng.choice([5000, 20000])
        return self.rng.choice([b"[" * depth, b"[" * depth + b"]" * depth, b'{"a":' * depth]), None

    def _too_large(self) -> tuple[bytes, str | None]:
        return self._dumps({"id": self._id(), "pad": "x" * (1 << 20)}), None

    def _bad_body(self) -> tuple[bytes, str | None]:
        return self._dumps(
            {"body": self.rng.choice(["not json", "[" * 3000, json.dumps({"rows": []})])}
        ), None


#: Payload kinds, a valid one about every third draw; heavy ones (4097 rows, 1 MiB) rarely.
_KINDS = (
    ["row_ok"] * 6
    + ["records_ok", "batch_ok", "body_ok", "missing_values", "nan_literal"] * 2
    + ["wrong_length", "wrong_type", "unknown_feature", "non_finite", "empty_rows", "ambiguous"]
    + ["deep_inside", "unicode_id", "duplicate_key", "no_id", "id_not_a_string", "id_too_long", "garbage"]
    + ["truncated", "not_an_object", "deep_top", "bad_body"]
)  # too_many_rows and too_large are heavy: fuzz() sends them on a schedule instead
