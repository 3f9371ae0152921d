"""Following an execution reads only new events, one call per poll, as AWS pages the history."""

from __future__ import annotations

from typing import Any

from mlops_edge.report.follow import greengrass_device_poller
from mlops_edge.report.history import HistoryCursor


class PagedHistory:
    """GetExecutionHistory as AWS pages it: maxResults per page, reverseOrder, opaque nextToken."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.calls = 0

    def add(self, count: int) -> None:
        start = len(self.events) + 1
        self.events += [{"id": i, "type": "PassStateEntered"} for i in range(start, start + count)]

    def get_execution_history(
        self, *, executionArn: str, maxResults: int = 100, reverseOrder: bool = False, nextToken: str = "0"
    ) -> dict[str, Any]:
        self.calls += 1
        ordered = list(reversed(self.events)) if reverseOrder else list(self.events)
        offset = int(nextToken)
        page = {"events": ordered[offset : offset + maxResults]}
        if offset + maxResults < len(ordered):
            page["nextToken"] = str(offset + maxResults)
        return page


def test_each_poll_returns_only_new_events_in_order_with_one_call() -> None:
    history = PagedHistory()
    cursor = HistoryCursor(history, "arn")
    history.add(5)
    assert [e["id"] for e in cursor.new_events()] == [1, 2, 3, 4, 5]
    history.add(3)
    assert [e["id"] for e in cursor.new_events()] == [6, 7, 8]
    assert cursor.new_events() == []
    assert history.calls == 3


def test_a_burst_longer_than_a_page_is_read_whole() -> None:
    history = PagedHistory()
    cursor = HistoryCursor(history, "arn", page_size=100)
    history.add(40)
    cursor.new_events()
    history.add(250)
    fresh = [e["id"] for e in cursor.new_events()]
    assert fresh == list(range(41, 291))
    assert history.calls == 1 + 3  # 250 new events after 40 seen: three pages, no more


class Greengrass:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def list_effective_deployments(self, coreDeviceThingName: str) -> dict[str, Any]:
        self.asked.append(coreDeviceThingName)
        return {"effectiveDeployments": [{"deploymentId": "d1", "coreDeviceExecutionStatus": "SUCCEEDED"}]}


class Progress:
    def __init__(self, deployment_id: str | None) -> None:
        self.deployment_id = deployment_id

    def output_of(self, state: str) -> dict[str, Any] | None:
        return {"deployment": {"deployment_id": self.deployment_id}} if self.deployment_id else None


def test_device_polls_ask_a_few_devices_each_time_in_turn() -> None:
    greengrass = Greengrass()
    things = [f"d{i:03d}" for i in range(500)]
    poll = greengrass_device_poller(greengrass, things, per_poll=10)
    assert set(poll(Progress(None)).values()) == {"waiting for deployment"}
    assert greengrass.asked == []
    statuses = poll(Progress("d1"))
    assert len(greengrass.asked) == 10 and list(statuses.values()).count("SUCCEEDED") == 10
    poll(Progress("d1"))
    assert greengrass.asked[10:20] == things[10:20]
