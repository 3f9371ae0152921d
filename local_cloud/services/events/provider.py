"""EventBridge rules that start Step Functions executions, and SageMaker's model package events.

moto's EventBridge stores rules and targets and delivers PutEvents to logs, SQS and buses only;
and nothing emits the events AWS services put on the default bus. This provider adds both, after
moto served a request (an observer of the dispatch layer), on a worker thread as EventBridge does:

- a model package created or updated (``SageMaker.CreateModelPackage``, ``UpdateModelPackage``)
  emits *SageMaker Model Package State Change* with the package as DescribeModelPackage shows it;
- that event, and every ``PutEvents`` entry, goes to each enabled rule of its bus whose pattern
  matches, and each of the rule's ``arn:...:states:`` targets gets a StartExecution with the
  target's input (retried per its RetryPolicy, at most a few times);
- moto's own targets get InputTransformer templates filled the same way (its parser breaks on
  CDK's templates).

Everything is read and started through the local cloud's own API (``ServerContext.client``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
import uuid
from typing import Any

from werkzeug.wrappers import Request, Response

from local_cloud.context import ServerContext
from local_cloud.services.events.models import (
    envelope,
    matches,
    model_package_state_change,
    target_input,
    transform,
)

LOG = logging.getLogger("local_cloud.events")
_PACKAGE_OPS = {"SageMaker.CreateModelPackage", "SageMaker.UpdateModelPackage"}
#: Delivery attempts per target at most (AWS retries for up to a day; a local run wants an answer).
MAX_ATTEMPTS = 3


def _fill_templates_as_eventbridge_does() -> None:
    """moto's own targets (logs, SQS, buses) get InputTransformer templates filled as EventBridge
    fills them: moto 5.2.5 pastes a string value without its quotes, so CDK's
    ``"model_package_arn":<detail-ModelPackageArn>`` became invalid JSON and PutEvents a 500."""
    from moto.events import utils

    original = utils.EventTemplateParser.parse
    if getattr(original, "_local_cloud", False):
        return

    def parse(input_template: str | None, input_paths_map: dict[str, Any], event: Any) -> Any:
        if not input_template:
            return original(input_template, input_paths_map, event)
        return json.loads(transform(input_template, input_paths_map or {}, event))

    parse._local_cloud = True  # type: ignore[attr-defined]
    utils.EventTemplateParser.parse = staticmethod(parse)  # type: ignore[method-assign]


def _leave_step_functions_targets_to_us() -> None:
    """moto 5.2.5 raises NotImplementedError (a 500 for PutEvents) on a Step Functions target; it
    delivers to its other targets, and this provider starts the executions after it answered."""
    import copy

    from moto.events.models import Rule

    if getattr(Rule.send_to_targets, "_local_cloud", False):
        return
    original = Rule.send_to_targets

    def send_to_targets(self: Rule, original_event: Any, transform_input: bool = True) -> None:
        if not any(_is_state_machine(t["Arn"]) for t in self.targets):
            return original(self, original_event, transform_input)
        clone = copy.copy(self)  # the rule itself is left as it is (other requests read it)
        clone.targets = [t for t in self.targets if not _is_state_machine(t["Arn"])]
        return original(clone, original_event, transform_input)

    send_to_targets._local_cloud = True  # type: ignore[attr-defined]
    Rule.send_to_targets = send_to_targets  # type: ignore[method-assign]


def _is_state_machine(arn: str) -> bool:
    return ":states:" in arn and ":stateMachine:" in arn


class EventsProvider:
    def __init__(self, ctx: ServerContext) -> None:
        _fill_templates_as_eventbridge_does()
        _leave_step_functions_targets_to_us()
        self.ctx = ctx
        self._queue: queue.Queue[tuple[str, Any] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.delivered: list[dict[str, Any]] = []  # (for the log and tests) what was started

    # -- dispatch layer --------------------------------------------------------------------------
    def handle(self, request: Request) -> Response | None:
        return None  # moto serves every EventBridge and SageMaker call; we act afterwards

    def observe(self, request: Request, status: int) -> None:
        if status != 200:
            return
        target = request.headers.get("X-Amz-Target", "")
        if target in _PACKAGE_OPS or target == "AWSEvents.PutEvents":
            self._queue.put((target, request.get_json(force=True, silent=True) or {}))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="events-delivery", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- delivery --------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None or self.ctx.stopping.is_set():
                return
            try:
                for bus, event in self._events(*item):
                    self.deliver(event, bus=bus)
            except Exception:
                LOG.exception("event delivery failed for %s", item[0])

    def _events(self, operation: str, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        if operation == "AWSEvents.PutEvents":
            out = []
            for entry in body.get("Entries") or []:
                try:
                    detail = json.loads(entry.get("Detail") or "")
                except ValueError:
                    continue  # moto already answered MalformedDetail for it
                event = envelope(
                    entry.get("Source", ""),
                    entry.get("DetailType", ""),
                    detail,
                    account=self.ctx.account_id,
                    region=self.ctx.region,
                    resources=entry.get("Resources"),
                )
                out.append((_bus_name(entry.get("EventBusName")), event))
            return out
        package = self._package(operation, body)
        if package is None:
            return []
        return [
            (
                "default",
                model_package_state_change(package, account=self.ctx.account_id, region=self.ctx.region),
            )
        ]

    def _package(self, operation: str, body: dict[str, Any]) -> dict[str, Any] | None:
        sagemaker = self.ctx.client("sagemaker")
        arn = body.get("ModelPackageArn")
        if operation == "SageMaker.CreateModelPackage":
            group = body.get("ModelPackageGroupName")
            if not group:
                return None  # an unversioned package: no group, no state change event
            latest = sagemaker.list_model_packages(
                ModelPackageGroupName=group, SortBy="CreationTime", SortOrder="Descending", MaxResults=1
            )["ModelPackageSummaryList"]
            arn = latest[0]["ModelPackageArn"] if latest else None
        return sagemaker.describe_model_package(ModelPackageName=arn) if arn else None

    def deliver(self, event: dict[str, Any], *, bus: str = "default") -> list[str]:
        """Start an execution for every Step Functions target of every matching rule on ``bus``."""
        events = self.ctx.client("events")
        started = []
        rules = [
            r for page in events.get_paginator("list_rules").paginate(EventBusName=bus) for r in page["Rules"]
        ]
        for rule in rules:
            if rule.get("State") != "ENABLED" or not matches(rule.get("EventPattern"), event):
                continue
            targets = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus)["Targets"]
            for target in targets:
                if _is_state_machine(target["Arn"]):
                    arn = self._start(rule["Name"], target, event)
                    if arn:
                        started.append(arn)
        return started

    def _start(self, rule: str, target: dict[str, Any], event: dict[str, Any]) -> str | None:
        sfn = self.ctx.client("stepfunctions")
        document = target_input(target, event)
        policy = target.get("RetryPolicy") or {}
        attempts = 1 + min(int(policy.get("MaximumRetryAttempts", MAX_ATTEMPTS - 1)), MAX_ATTEMPTS - 1)
        for attempt in range(1, attempts + 1):
            try:
                arn = sfn.start_execution(
                    stateMachineArn=target["Arn"], name=str(uuid.uuid4()), input=document
                )["executionArn"]
            except Exception as exc:
                LOG.warning(
                    "rule %s: StartExecution on %s failed (attempt %d): %s", rule, target["Arn"], attempt, exc
                )
                if attempt < attempts and not self.ctx.stopping.is_set():
                    time.sleep(attempt)
                continue
            LOG.info("rule %s: %s started %s", rule, event["detail-type"], arn)
            with contextlib.suppress(Exception):
                self.delivered.append({"rule": rule, "execution": arn, "event": event["id"]})
            return str(arn)
        return None


def _bus_name(name_or_arn: str | None) -> str:
    if not name_or_arn:
        return "default"
    return name_or_arn.rsplit("/", 1)[-1] if name_or_arn.startswith("arn:") else name_or_arn
