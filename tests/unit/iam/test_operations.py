"""Operation → IAM action, resource ARNs and enforced dependent actions, from the dataset."""

from __future__ import annotations

import botocore.session
import pytest

from local_cloud.iam import MissingResourceFact, UnknownOperation, iam_action, required_access
from local_cloud.iam.dataset import dataset
from local_cloud.iam.dependencies import DEPENDENT, FACTS, IMPLIED

A, R = "123456789012", "eu-west-1"
BUCKET = "mlops-edge-artifacts"
GG = f"arn:aws:greengrass:{R}:{A}"
IOT = f"arn:aws:iot:{R}:{A}"
SM = f"arn:aws:sagemaker:{R}:{A}"
GROUP = f"{IOT}:thinggroup/fleet"


#: (service, operation, params, facts, IAM action, resources): what the pipeline's roles call.
def test_no_permission_needed() -> None:
    assert iam_action("sts", "GetCallerIdentity") is None
    assert required_access("sts", "GetCallerIdentity", {}, account=A, region=R).checks == ()


def test_dependent_action_entries_cover_exactly_what_the_dataset_lists() -> None:
    """A dataset upgrade that adds or drops a dependent action fails here until decided."""
    for action, entry in DEPENDENT.items():
        listed = set(dataset().action(action).dependent_actions)
        enforced = {d.action for d in entry.enforced}
        assert enforced.isdisjoint(entry.not_enforced), action
        assert enforced | set(entry.not_enforced) == listed, action


def test_implied_and_fact_tables_name_real_actions() -> None:
    for action, deps in IMPLIED.items():
        assert action in dataset()
        assert all(d.action in dataset() for d in deps)
    assert all(a in dataset() for a in FACTS)


def test_every_greengrassv2_operation_meets_a_v2_entry() -> None:
    model = botocore.session.get_session().get_service_model("greengrassv2")
    for operation in model.operation_names:
        action = iam_action("greengrassv2", operation)
        assert action is not None and dataset().action(action).greengrass_v2, operation


def test_a_v1_call_is_not_answered_by_the_v2_entry() -> None:
    with pytest.raises(UnknownOperation, match="only the V2 entry"):
        iam_action("greengrass", "CreateDeployment")
    assert iam_action("greengrass", "CreateGroup") == "greengrass:CreateGroup"


def test_unknown_operation() -> None:
    with pytest.raises(UnknownOperation):
        iam_action("s3", "MakeCoffee")


def _checks(
    service: str, operation: str, params: dict, facts: dict | None = None
) -> list[tuple[str, tuple[str, ...]]]:
    access = required_access(service, operation, params, account=A, region=R, facts=facts)
    return [(c.action, c.resources) for c in access.checks]


def test_list_effective_deployments_enforces_its_five_dependent_actions() -> None:
    access = required_access(
        "greengrassv2",
        "ListEffectiveDeployments",
        {"coreDeviceThingName": "edge-1"},
        account=A,
        region=R,
        facts={"jobIds": ["j1", "j2"], "thingGroupNames": ["fleet"]},
    )
    thing = (f"{IOT}:thing/edge-1",)
    assert [(c.action, c.resources) for c in access.checks] == [
        ("greengrass:ListEffectiveDeployments", (f"{GG}:coreDevices:edge-1",)),
        ("iot:DescribeJob", (f"{IOT}:job/j1", f"{IOT}:job/j2")),
        ("iot:DescribeJobExecution", thing),
        ("iot:DescribeThing", thing),
        ("iot:DescribeThingGroup", (GROUP,)),
        ("iot:GetThingShadow", thing),
    ]
    assert access.not_enforced == {}
    assert access.checks[1].context["aws:CalledVia"] == "greengrass.amazonaws.com"


def test_a_device_without_deployments_touches_no_job() -> None:
    checks = _checks(
        "greengrassv2",
        "ListEffectiveDeployments",
        {"coreDeviceThingName": "e"},
        {"jobIds": [], "thingGroupNames": []},
    )
    assert [a for a, _ in checks] == [
        "greengrass:ListEffectiveDeployments",
        "iot:DescribeJobExecution",
        "iot:DescribeThing",
        "iot:GetThingShadow",
    ]


def test_create_deployment_by_target_kind() -> None:
    to_group = _checks("greengrassv2", "CreateDeployment", {"targetArn": GROUP}, {"jobId": "new-1"})
    assert to_group == [
        ("greengrass:CreateDeployment", ("*",)),
        ("iot:CreateJob", (f"{IOT}:job/new-1", GROUP)),
        ("iot:DescribeThingGroup", (GROUP,)),
    ]
    replacing = _checks("greengrassv2", "CreateDeployment", {"targetArn": GROUP}, {"previousJobIds": ["old"]})
    assert ("iot:CancelJob", (f"{IOT}:job/old",)) in replacing
    to_thing = _checks("greengrassv2", "CreateDeployment", {"targetArn": f"{IOT}:thing/edge-1"})
    assert [a for a, _ in to_thing] == [
        "greengrass:CreateDeployment",
        "iot:DescribeThing",
        "iot:GetThingShadow",
        "iot:UpdateThingShadow",
    ]
    access = required_access("greengrassv2", "CreateDeployment", {"targetArn": GROUP}, account=A, region=R)
    assert set(access.not_enforced) == {"iot:DescribeJob", "iot:UpdateJob", "iot:DeleteThingShadow"}


def test_add_tags_only_when_tagging() -> None:
    """The issue's example: CreateModelPackage lists sagemaker:AddTags, needed only with Tags."""
    params = {"ModelPackageGroupName": "Models"}
    facts = {"ModelPackageVersion": 2}
    assert [a for a, _ in _checks("sagemaker", "CreateModelPackage", params, facts)] == [
        "sagemaker:CreateModelPackage"
    ]
    tagged = _checks(
        "sagemaker", "CreateModelPackage", {**params, "Tags": [{"Key": "k", "Value": "v"}]}, facts
    )
    assert tagged[1] == ("sagemaker:AddTags", (f"{SM}:model-package/models/2",))


def test_create_training_job_passes_its_role() -> None:
    access = required_access(
        "sagemaker",
        "CreateTrainingJob",
        {"TrainingJobName": "J", "RoleArn": "arn:aws:iam::123456789012:role/T"},
        account=A,
        region=R,
    )
    passrole = access.checks[1]
    assert (passrole.action, passrole.resources) == ("iam:PassRole", ("arn:aws:iam::123456789012:role/T",))
    assert passrole.context == {"iam:PassedToService": "sagemaker.amazonaws.com"}  # the caller's own call


def test_parameters_carry_context_and_implied_actions() -> None:
    listing = required_access("s3", "ListObjectsV2", {"Bucket": BUCKET, "Prefix": "p/"}, account=A, region=R)
    assert listing.checks[0].context == {"s3:prefix": "p/"}
    tagged = _checks("s3", "PutObject", {"Bucket": BUCKET, "Key": "k", "Tagging": "a=1&b=2"})
    assert tagged[1] == ("s3:PutObjectTagging", (f"arn:aws:s3:::{BUCKET}/k",))
    put = required_access(
        "s3", "PutObject", {"Bucket": BUCKET, "Key": "k", "Tagging": "a=1&b=2"}, account=A, region=R
    )
    assert put.checks[0].context == {
        "aws:TagKeys": ["a", "b"],
        "aws:RequestTag/a": "1",
        "aws:RequestTag/b": "2",
    }
    copy = _checks("s3", "CopyObject", {"Bucket": BUCKET, "Key": "new", "CopySource": "src/old%20key"})
    assert copy[1] == ("s3:GetObject", ("arn:aws:s3:::src/old key",))


def test_actions_without_an_entry_report_their_dependent_actions_as_not_enforced() -> None:
    access = required_access("greengrassv2", "ListDeployments", {}, account=A, region=R)
    assert set(access.not_enforced) == set(dataset().action("greengrass:ListDeployments").dependent_actions)
    assert all(reason.startswith("no entry") for reason in access.not_enforced.values())


@pytest.mark.parametrize(
    ("service", "operation", "params", "facts"),
    [
        ("greengrassv2", "GetDeployment", {"deploymentId": "d"}, {"jobId": "j"}),  # no targetArn
        ("greengrassv2", "ListEffectiveDeployments", {"coreDeviceThingName": "e"}, None),  # no jobIds
        ("sagemaker", "CreateModelPackage", {"ModelPackageGroupName": "g"}, None),  # no version
        ("secretsmanager", "GetSecretValue", {"SecretId": "by-name"}, None),  # no full ARN
        ("greengrassv2", "CreateComponentVersion", {"inlineRecipe": b"just text"}, None),
        ("iot", "DescribeThing", {}, None),  # a required resource type without its name
    ],
)
def test_missing_facts_are_loud(service: str, operation: str, params: dict, facts: dict | None) -> None:
    with pytest.raises(MissingResourceFact):
        required_access(service, operation, params, account=A, region=R, facts=facts)
