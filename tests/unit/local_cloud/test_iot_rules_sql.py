"""The local IoT rules engine's SQL subset: what it selects, what WHERE lets through, what it refuses."""

from __future__ import annotations

import pytest

from local_cloud.services.iot_rules.exceptions import SqlParseException
from local_cloud.services.iot_rules.sql import Message, parse

TOPIC = "edge/core-1/monitoring"
DOC = {"window": {"rows": 5, "mean": 2.5, "kind": "x"}, "flag": True, "none": None, "name": "it's"}


def _msg(payload: dict | None = None, topic: str = TOPIC) -> Message:  # type: ignore[type-arg]
    return Message(topic, DOC if payload is None else payload, client_id=None, timestamp_ms=1234)


def test_select_star_and_columns() -> None:
    stmt = parse("select * , topic() as t, topic(2), window.rows, timestamp() AS ts from 'edge/+/monitoring'")
    assert stmt.topic_filter == "edge/+/monitoring"
    assert stmt.select(_msg()) == {**DOC, "t": TOPIC, "topic": "core-1", "rows": 5, "ts": 1234}


def test_select_omits_undefined_and_keeps_null() -> None:
    stmt = parse("SELECT window.missing AS m, none, topic(9) AS far, clientid() AS c FROM '#'")
    assert stmt.select(_msg()) == {"none": None}


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("window.rows > 3", True),
        ("window.rows >= 6", False),
        ("window.rows = 5 AND window.kind = 'x'", True),
        ("window.rows = 4 OR window.kind <> 'x'", False),
        ("NOT window.rows < 5", True),
        ("window.mean * 2 = window.rows", True),
        ("(window.rows + 1) % 4 = 2", True),
        ("name = 'it''s'", True),
        ("flag = true", True),
        ("topic(2) = 'core-1'", True),
        ("topic() = 'edge/core-1/monitoring'", True),
        ("window.rows = '5'", False),  # a number and a string: Undefined
        ("missing > 1", False),
        ("NOT missing = 1", False),  # NOT Undefined is Undefined
        ("missing = 1 OR flag", True),  # Undefined OR true
        ("missing = 1 AND flag", False),  # Undefined AND true is Undefined
        ("window.rows / 0 = 1", False),
        ("-window.rows < 0", True),
    ],
)
def test_where(where: str, expected: bool) -> None:
    assert parse(f"SELECT * FROM 'edge/+/monitoring' WHERE {where}").matches(_msg()) is expected


@pytest.mark.parametrize(
    ("sql", "says"),
    [
        ("", "non-empty"),
        ("DELETE FROM 'a'", "Expected SELECT"),
        ("SELECT * FROM a/b", "quoted topic filter"),
        ("SELECT *", "Expected FROM"),
        ("SELECT * FROM 'a/#/b'", "# must be the last level"),
        ("SELECT * FROM 'a/b+'", "whole level"),
        ("SELECT * FROM ''", "topic filter"),
        ("SELECT a + 1 FROM 'a'", "name with AS"),
        ("SELECT *, * FROM 'a'", "twice"),
        ("SELECT upper(a) AS u FROM 'a'", "upper() is not supported"),
        ("SELECT a[0] AS x FROM 'a'", "Array indexes"),
        ("SELECT * FROM 'a' WHERE a != 1", "use <>"),
        ("SELECT * FROM 'a' WHERE a IN (1, 2)", "Unexpected 'IN'"),
        ("SELECT * FROM 'a' WHERE CASE", "CASE is not supported"),
        ("SELECT topic(0) AS t FROM 'a'", "positive integer"),
        ("SELECT topic(1, 2) AS t FROM 'a'", "at most"),
        ("SELECT * FROM 'a' WHERE (a = 1", "Missing )"),
        ("SELECT * FROM 'a' WHERE a = 1 b", "Unexpected 'b'"),
        ("SELECT * FROM 'a' WHERE a = @", "Unexpected character"),
        ("SELECT a AS FROM 'a'", "AS needs a name"),
    ],
)
def test_refused_sql(sql: str, says: str) -> None:
    with pytest.raises(SqlParseException) as raised:
        parse(sql)
    assert raised.value.code == "SqlParseException"
    assert says in raised.value.message
