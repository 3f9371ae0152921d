"""Deployments reach a fake device over MQTT as IoT job executions; its reports drive the
effective deployment statuses, core device health and installed components."""

from __future__ import annotations

import json
import time
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.integration.local_cloud.conftest import wait_until
from tests.integration.local_cloud.mqtt_client import MqttTestClient

pytestmark = pytest.mark.integration
ACCOUNT = "123456789012"


class FakeDevice:
    """The device side of docs/contracts.md §4, driven step by step by the test."""

    def __init__(self, ident) -> None:  # type: ignore[no-untyped-def]
        self.thing = ident.thing_name
        self.client = MqttTestClient(
            ident.mqtt_host, ident.mqtt_port, ident.ca_path, ident.cert_path, ident.key_path, self.thing
        )
        assert self.client.subscribe(f"$aws/things/{self.thing}/jobs/#") == 1

    def next_get(self) -> dict:
        self.client.publish(f"$aws/things/{self.thing}/jobs/$next/get", {"clientToken": "t1"})
        return self.client.wait_for("/jobs/$next/get/accepted")

    def notified(self) -> dict:
        return self.client.wait_for("/jobs/notify-next")

    def notified_idle(self) -> dict:
        """The next notify-next that carries no execution.

        A late joiner's execution is queued asynchronously, so its own QUEUED notification can
        reach the device after it already fetched the execution with $next/get; IoT Jobs gives no
        ordering between the two, so the test skips notifications that still name the execution.
        """
        while True:
            payload = self.notified()
            if "execution" not in payload:
                return payload

    def report(self, job_id: str, status: str, **details: str) -> dict:
        self.client.publish(
            f"$aws/things/{self.thing}/jobs/{job_id}/update", {"status": status, "statusDetails": details}
        )
        return self.client.wait_for(f"/jobs/{job_id}/update/accepted")

    def health(self, components: list[dict], status: str = "HEALTHY") -> None:
        self.client.publish(
            f"$aws/things/{self.thing}/greengrassv2/health/json",
            {
                "thing": self.thing,
                "overallDeviceStatus": status,
                "timestamp": int(time.time() * 1000),
                "sequenceNumber": 1,
                "messageType": "COMPLETE",
                "nucleusVersion": "2.12.0",
                "platform": "linux",
                "architecture": "amd64",
                "components": components,
            },
        )

    def close(self) -> None:
        self.client.close()


def _component(local_cloud, gg) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    name = f"com.test.D{uuid.uuid4().hex[:6]}"
    recipe = {
        "RecipeFormatVersion": "2020-01-25",
        "ComponentName": name,
        "ComponentVersion": "1.0.0",
        "Manifests": [{"Lifecycle": {}}],
    }
    arn = gg.create_component_version(inlineRecipe=json.dumps(recipe).encode())["arn"]
    wait_until(lambda: gg.describe_component(arn=arn)["status"]["componentState"] == "DEPLOYABLE", timeout=10)
    return name, "1.0.0"


def _role_client(local_cloud, service: str, *statements: dict):  # type: ignore[no-untyped-def]
    """A client signed by a session of a new role allowed only ``statements``."""
    iam = local_cloud.client("iam")
    role = f"jobs-reader-{uuid.uuid4().hex[:6]}"
    trust = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": "sts:AssumeRole",
    }
    arn = iam.create_role(
        RoleName=role, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [trust]})
    )["Role"]["Arn"]
    policy = {"Version": "2012-10-17", "Statement": list(statements)}
    iam.put_role_policy(RoleName=role, PolicyName="only", PolicyDocument=json.dumps(policy))
    creds = local_cloud.client("sts").assume_role(RoleArn=arn, RoleSessionName="jobs-test")["Credentials"]
    return boto3.client(
        service,
        endpoint_url=local_cloud.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def _effective(gg, thing: str) -> list[dict]:  # type: ignore[no-untyped-def]
    return gg.list_effective_deployments(coreDeviceThingName=thing)["effectiveDeployments"]


def test_group_deployment_delivery_and_status(local_cloud, provision_device) -> None:  # type: ignore[no-untyped-def]
    gg = local_cloud.client("greengrassv2")
    group = f"fleet-{uuid.uuid4().hex[:6]}"
    ident = provision_device(thing_group=group)
    device = FakeDevice(ident)
    try:
        assert "execution" not in device.next_get()  # nothing pending yet
        name, version = _component(local_cloud, gg)
        target = f"arn:aws:iot:us-east-1:{ACCOUNT}:thinggroup/{group}"
        created = gg.create_deployment(
            targetArn=target,
            deploymentName="first",
            components={name: {"componentVersion": version, "configurationUpdate": {"merge": '{"a": 1}'}}},
            deploymentPolicies={
                "failureHandlingPolicy": "ROLLBACK",
                "componentUpdatePolicy": {"timeoutInSeconds": 30, "action": "NOTIFY_COMPONENTS"},
            },
            iotJobConfiguration={"timeoutConfig": {"inProgressTimeoutInMinutes": 5}},
        )
        note = device.notified()["execution"]
        assert (
            note["jobId"] == created["iotJobId"]
            and note["status"] == "QUEUED"
            and note["thingName"] == ident.thing_name
        )
        doc = note["jobDocument"]
        assert doc["deploymentId"] == created["deploymentId"]
        assert doc["configurationArn"].startswith(
            f"arn:aws:greengrass:us-east-1:{ACCOUNT}:configuration:thinggroup/{group}:"
        )
        assert doc["groupName"] == f"thinggroup/{group}"
        assert doc["components"][name] == {
            "version": "1.0.0",
            "configurationUpdate": {"merge": '{"a": 1}'},
            "runWith": {},
        }
        assert doc["failureHandlingPolicy"] == "ROLLBACK"
        assert doc["componentUpdatePolicy"] == {"timeout": 30, "action": "NOTIFY_COMPONENTS"}
        assert device.next_get()["execution"]["jobId"] == created["iotJobId"]
        [eff] = _effective(gg, ident.thing_name)
        assert eff["coreDeviceExecutionStatus"] == "QUEUED" and eff["targetArn"] == target

        device.report(created["iotJobId"], "IN_PROGRESS")
        assert _effective(gg, ident.thing_name)[0]["coreDeviceExecutionStatus"] == "IN_PROGRESS"
        device.report(created["iotJobId"], "SUCCEEDED", **{"detailed-deployment-status": "SUCCESSFUL"})
        assert "execution" not in device.notified()
        [eff] = _effective(gg, ident.thing_name)
        assert eff["coreDeviceExecutionStatus"] == "SUCCEEDED"
        assert eff["reason"] == "SUCCESSFUL"  # the detailed status, when there is no failure cause
        got = gg.get_deployment(deploymentId=created["deploymentId"])
        assert got["deploymentStatus"] == "ACTIVE" and got["isLatestForTarget"] is True
        assert got["iotJobConfiguration"]["timeoutConfig"]["inProgressTimeoutInMinutes"] == 5
        assert got["deploymentPolicies"]["componentUpdatePolicy"]["timeoutInSeconds"] == 30

        device.health(
            [
                {
                    "componentName": name,
                    "version": "1.0.0",
                    "state": "RUNNING",
                    "isRoot": True,
                    "fleetConfigArns": [doc["configurationArn"]],
                    "statusDetails": {},
                },
                {
                    "componentName": "aws.greengrass.Nucleus",
                    "version": "2.12.0",
                    "state": "FINISHED",
                    "isRoot": False,
                    "fleetConfigArns": [],
                    "statusDetails": {},
                },
            ]
        )
        wait_until(
            lambda: gg.get_core_device(coreDeviceThingName=ident.thing_name).get("coreVersion") == "2.12.0",
            timeout=5,
        )
        core = gg.get_core_device(coreDeviceThingName=ident.thing_name)
        assert core["status"] == "HEALTHY" and core["platform"] == "linux" and core["architecture"] == "amd64"
        roots = gg.list_installed_components(coreDeviceThingName=ident.thing_name)["installedComponents"]
        assert [(c["componentName"], c["lifecycleState"]) for c in roots] == [(name, "RUNNING")]
        assert roots[0]["lastInstallationSource"] == doc["configurationArn"]
        every = gg.list_installed_components(coreDeviceThingName=ident.thing_name, topologyFilter="ALL")[
            "installedComponents"
        ]
        assert len(every) == 2
        group_arn = f"arn:aws:iot:us-east-1:{ACCOUNT}:thinggroup/{group}"
        assert [
            d["coreDeviceThingName"] for d in gg.list_core_devices(thingGroupArn=group_arn)["coreDevices"]
        ] == [ident.thing_name]

        # a new deployment to the same target supersedes the old one; a failure carries its reason
        second = gg.create_deployment(
            targetArn=target, deploymentName="second", components={name: {"componentVersion": version}}
        )
        assert device.notified()["execution"]["jobId"] == second["iotJobId"]
        old = gg.get_deployment(deploymentId=created["deploymentId"])
        assert old["isLatestForTarget"] is False and old["deploymentStatus"] == "INACTIVE"
        latest = gg.list_deployments(targetArn=target)["deployments"]
        assert [d["deploymentId"] for d in latest] == [second["deploymentId"]]
        assert len(gg.list_deployments(targetArn=target, historyFilter="ALL")["deployments"]) == 2
        device.report(
            second["iotJobId"],
            "FAILED",
            **{
                "detailed-deployment-status": "FAILED_ROLLBACK_COMPLETE",
                "deployment-failure-cause": "startup script exited 1",
                "deployment-error-stack": '["DEPLOYMENT_FAILURE", "COMPONENT_UPDATE_ERROR"]',
                "deployment-error-types": '["COMPONENT_ERROR"]',
            },
        )
        eff = {e["deploymentId"]: e for e in _effective(gg, ident.thing_name)}[second["deploymentId"]]
        assert eff["coreDeviceExecutionStatus"] == "FAILED" and eff["reason"] == "startup script exited 1"
        assert eff["statusDetails"] == {
            "errorStack": ["DEPLOYMENT_FAILURE", "COMPONENT_UPDATE_ERROR"],
            "errorTypes": ["COMPONENT_ERROR"],
        }
    finally:
        device.close()


def test_cancel_and_thing_target_and_late_joiner(local_cloud, provision_device) -> None:  # type: ignore[no-untyped-def]
    gg = local_cloud.client("greengrassv2")
    name, version = _component(local_cloud, gg)
    group = f"fleet-{uuid.uuid4().hex[:6]}"
    local_cloud.client("iot").create_thing_group(thingGroupName=group)
    target = f"arn:aws:iot:us-east-1:{ACCOUNT}:thinggroup/{group}"
    created = gg.create_deployment(targetArn=target, components={name: {"componentVersion": version}})
    # a device that joins the group after the deployment still receives it
    ident = provision_device(thing_group=group)
    device = FakeDevice(ident)
    try:
        assert device.next_get()["execution"]["jobId"] == created["iotJobId"]
        gg.cancel_deployment(deploymentId=created["deploymentId"])
        assert "execution" not in device.notified_idle()
        assert gg.get_deployment(deploymentId=created["deploymentId"])["deploymentStatus"] == "CANCELED"
        assert _effective(gg, ident.thing_name)[0]["coreDeviceExecutionStatus"] == "CANCELED"
        with pytest.raises(gg.exceptions.ConflictException):
            gg.cancel_deployment(deploymentId=created["deploymentId"])

        thing_target = f"arn:aws:iot:us-east-1:{ACCOUNT}:thing/{ident.thing_name}"
        direct = gg.create_deployment(
            targetArn=thing_target, components={name: {"componentVersion": version}}
        )
        assert device.notified()["execution"]["jobId"] == direct["iotJobId"]
        device.report(direct["iotJobId"], "SUCCEEDED", **{"detailed-deployment-status": "SUCCESSFUL"})
        wait_until(
            lambda: gg.get_deployment(deploymentId=direct["deploymentId"])["deploymentStatus"] == "COMPLETED",
            timeout=5,
        )
        assert "execution" not in device.notified()  # nothing left to do

        # health reports drive the core device's status
        device.health([], status="UNHEALTHY")
        wait_until(
            lambda: gg.get_core_device(coreDeviceThingName=ident.thing_name)["status"] == "UNHEALTHY",
            timeout=5,
        )
        unhealthy = gg.list_core_devices(status="UNHEALTHY")["coreDevices"]
        assert ident.thing_name in [d["coreDeviceThingName"] for d in unhealthy]

        # a device may reject a deployment; a terminal execution cannot be updated again
        rejected = gg.create_deployment(
            targetArn=thing_target, components={name: {"componentVersion": version}}
        )
        assert device.notified()["execution"]["jobId"] == rejected["iotJobId"]
        device.report(rejected["iotJobId"], "REJECTED", **{"detailed-deployment-status": "REJECTED"})
        eff = {e["deploymentId"]: e for e in _effective(gg, ident.thing_name)}[rejected["deploymentId"]]
        assert eff["coreDeviceExecutionStatus"] == "REJECTED"
        device.client.publish(
            f"$aws/things/{ident.thing_name}/jobs/{rejected['iotJobId']}/update", {"status": "SUCCEEDED"}
        )
        assert device.client.wait_for("/update/rejected")["code"] == "InvalidStateTransition"
    finally:
        device.close()


def test_deployment_errors(local_cloud, provision_device) -> None:  # type: ignore[no-untyped-def]
    gg = local_cloud.client("greengrassv2")
    with pytest.raises(gg.exceptions.ResourceNotFoundException):
        gg.create_deployment(
            targetArn=f"arn:aws:iot:us-east-1:{ACCOUNT}:thinggroup/no-such-group", components={}
        )
    ident = provision_device()
    with pytest.raises(gg.exceptions.ResourceNotFoundException):
        gg.create_deployment(
            targetArn=f"arn:aws:iot:us-east-1:{ACCOUNT}:thing/{ident.thing_name}",
            components={"com.test.Missing": {"componentVersion": "9.9.9"}},
        )
    with pytest.raises(gg.exceptions.ValidationException):
        gg.list_deployments(targetArn="arn:aws:greengrass:us-east-1:1:components:x")
    with pytest.raises(gg.exceptions.ResourceNotFoundException):
        gg.cancel_deployment(deploymentId=str(uuid.uuid4()))
    with pytest.raises(gg.exceptions.ResourceNotFoundException):
        gg.list_effective_deployments(coreDeviceThingName="never-seen")
    with pytest.raises(gg.exceptions.ResourceNotFoundException):
        gg.list_installed_components(coreDeviceThingName="never-seen")


def test_in_progress_timeout_gives_timed_out(local_cloud, provision_device) -> None:  # type: ignore[no-untyped-def]
    gg = local_cloud.client("greengrassv2")
    name, version = _component(local_cloud, gg)
    ident = provision_device()
    device = FakeDevice(ident)
    local_cloud.set_job_timeout_minute(0.5)
    try:
        created = gg.create_deployment(
            targetArn=f"arn:aws:iot:us-east-1:{ACCOUNT}:thing/{ident.thing_name}",
            components={name: {"componentVersion": version}},
            iotJobConfiguration={"timeoutConfig": {"inProgressTimeoutInMinutes": 1}},
        )
        assert device.notified()["execution"]["jobId"] == created["iotJobId"]
        device.report(created["iotJobId"], "IN_PROGRESS")
        assert "execution" not in device.notified()  # timed out: nothing pending any more
        [eff] = _effective(gg, ident.thing_name)
        assert eff["coreDeviceExecutionStatus"] == "TIMED_OUT"
    finally:
        local_cloud.set_job_timeout_minute(None)
        device.close()


def test_rollout_abort_and_the_job_through_the_iot_api(local_cloud, provision_device) -> None:  # type: ignore[no-untyped-def]
    """One rollout on the real endpoint, a "minute" of 2 s: one device a minute, two failures
    abort the job, and iot:DescribeJob / ListJobExecutionsForJob / GetDeployment show it."""
    gg, iot = local_cloud.client("greengrassv2"), local_cloud.client("iot")
    name, version = _component(local_cloud, gg)
    group = f"fleet-{uuid.uuid4().hex[:6]}"
    idents = sorted((provision_device(thing_group=group) for _ in range(3)), key=lambda i: i.thing_name)
    devices = [FakeDevice(ident) for ident in idents[:2]]
    target = f"arn:aws:iot:us-east-1:{ACCOUNT}:thinggroup/{group}"
    criterion = {
        "failureType": "FAILED",
        "action": "CANCEL",
        "thresholdPercentage": 10,
        "minNumberOfExecutedThings": 2,
    }
    config = {
        "jobExecutionsRolloutConfig": {"maximumPerMinute": 1},
        "abortConfig": {"criteriaList": [criterion]},
    }
    local_cloud.set_job_timeout_minute(2)
    try:
        with pytest.raises(gg.exceptions.ValidationException) as refused:
            gg.create_deployment(
                targetArn=target, iotJobConfiguration={"timeoutConfig": {"inProgressTimeoutInMinutes": 20000}}
            )
        assert "iotJobConfiguration.timeoutConfig.inProgressTimeoutInMinutes" in str(refused.value)
        started = time.monotonic()
        created = gg.create_deployment(
            targetArn=target, components={name: {"componentVersion": version}}, iotJobConfiguration=config
        )
        job_id = created["iotJobId"]
        job = iot.describe_job(jobId=job_id)["job"]
        assert (
            job["status"] == "IN_PROGRESS"
            and job["jobArn"] == created["iotJobArn"]
            and job["targets"] == [target]
        )
        assert job["jobProcessDetails"]["numberOfQueuedThings"] == 3 and job["isConcurrent"] is True
        assert job["jobExecutionsRolloutConfig"] == {"maximumPerMinute": 1} and job["abortConfig"] == {
            "criteriaList": [criterion]
        }
        assert devices[0].notified()["execution"]["jobId"] == job_id
        assert devices[1].notified()["execution"]["jobId"] == job_id
        assert time.monotonic() - started > 1.9  # one a minute: the second waited for minute 1
        devices[0].report(job_id, "FAILED")
        devices[1].report(job_id, "FAILED")  # 2 of 2 executed failed: aborted
        job = wait_until(
            lambda: (j := iot.describe_job(jobId=job_id)["job"])["status"] == "CANCELED" and j, timeout=5
        )
        counts = job["jobProcessDetails"]
        assert (
            counts["numberOfFailedThings"],
            counts["numberOfCanceledThings"],
            counts["numberOfQueuedThings"],
        ) == (2, 1, 0)
        assert job["reasonCode"] and "2 of 2" in job["comment"]
        summaries = iot.list_job_executions_for_job(jobId=job_id)["executionSummaries"]
        assert [s["thingArn"].rpartition("/")[2] for s in summaries] == [i.thing_name for i in idents]
        assert [s["jobExecutionSummary"]["status"] for s in summaries] == ["FAILED", "FAILED", "CANCELED"]
        canceled = iot.list_job_executions_for_job(jobId=job_id, status="CANCELED")["executionSummaries"]
        assert len(canceled) == 1 and canceled[0]["jobExecutionSummary"]["executionNumber"] == 1
        got = gg.get_deployment(deploymentId=created["deploymentId"])
        assert (
            got["deploymentStatus"] == "CANCELED"
            and got["iotJobId"] == job_id
            and got["iotJobArn"] == job["jobArn"]
        )
        assert got["iotJobConfiguration"] == config
        with pytest.raises(iot.exceptions.ResourceNotFoundException):
            iot.describe_job(jobId=f"no-such-{uuid.uuid4().hex[:6]}")
        as_role = _role_client(
            local_cloud, "iot", {"Effect": "Allow", "Action": "iot:DescribeJob", "Resource": job["jobArn"]}
        )
        assert (
            as_role.describe_job(jobId=job_id)["job"]["status"] == "CANCELED"
        )  # IAM decides, as for any call
        with pytest.raises(ClientError) as denied:
            as_role.list_job_executions_for_job(jobId=job_id)
        assert denied.value.response["Error"]["Code"].startswith("AccessDenied")

        # continuous: a thing added to the group later gets the group's live deployment at once
        second = gg.create_deployment(targetArn=target, components={name: {"componentVersion": version}})
        late = FakeDevice(provision_device())
        devices.append(late)
        iot.add_thing_to_thing_group(thingGroupName=group, thingName=late.thing)
        assert late.notified()["execution"]["jobId"] == second["iotJobId"]
    finally:
        local_cloud.set_job_timeout_minute(None)
        for device in devices:
            device.close()
