"""Resource ARNs of the calls the pipeline's roles make, filled from parameters and facts."""

from __future__ import annotations

import pytest

from local_cloud.iam import iam_action, resource_arns

A, R = "123456789012", "eu-west-1"
BUCKET = "mlops-edge-artifacts"
GG = f"arn:aws:greengrass:{R}:{A}"
IOT = f"arn:aws:iot:{R}:{A}"
SM = f"arn:aws:sagemaker:{R}:{A}"
GROUP = f"{IOT}:thinggroup/fleet"
RECIPE = (
    b"---\nRecipeFormatVersion: '2020-01-25'\nComponentName: com.example.Model\nComponentVersion: 1.0.3\n"
)

#: (service, operation, params, facts, IAM action, resources): what the pipeline's roles call.
ROWS = [
    (
        "s3",
        "GetObject",
        {"Bucket": BUCKET, "Key": "a/b.zip"},
        None,
        "s3:GetObject",
        [f"arn:aws:s3:::{BUCKET}/a/b.zip"],
    ),
    (
        "s3",
        "GetObject",
        {"Bucket": BUCKET, "Key": "k", "VersionId": "v1"},
        None,
        "s3:GetObjectVersion",
        [f"arn:aws:s3:::{BUCKET}/k"],
    ),
    ("s3", "HeadObject", {"Bucket": BUCKET, "Key": "k"}, None, "s3:GetObject", [f"arn:aws:s3:::{BUCKET}/k"]),
    (
        "s3",
        "PutObject",
        {"Bucket": BUCKET, "Key": "k", "IfNoneMatch": "*"},
        None,
        "s3:PutObject",
        [f"arn:aws:s3:::{BUCKET}/k"],
    ),
    (
        "s3",
        "ListObjectsV2",
        {"Bucket": BUCKET, "Prefix": "p/"},
        None,
        "s3:ListBucket",
        [f"arn:aws:s3:::{BUCKET}"],
    ),
    ("s3", "GetBucketLocation", {"Bucket": BUCKET}, None, "s3:GetBucketLocation", [f"arn:aws:s3:::{BUCKET}"]),
    (
        "s3",
        "DeleteObject",
        {"Bucket": BUCKET, "Key": "k"},
        None,
        "s3:DeleteObject",
        [f"arn:aws:s3:::{BUCKET}/k"],
    ),
    (
        "sagemaker",
        "CreateTrainingJob",
        {"TrainingJobName": "MlopsEdge-1", "RoleArn": "arn:aws:iam::123456789012:role/T"},
        None,
        "sagemaker:CreateTrainingJob",
        [f"{SM}:training-job/mlopsedge-1"],
    ),
    (
        "sagemaker",
        "DescribeTrainingJob",
        {"TrainingJobName": "MlopsEdge-1"},
        None,
        "sagemaker:DescribeTrainingJob",
        [f"{SM}:training-job/mlopsedge-1"],
    ),
    (
        "sagemaker",
        "CreateModelPackage",
        {"ModelPackageGroupName": "Models"},
        {"ModelPackageVersion": 4},
        "sagemaker:CreateModelPackage",
        [f"{SM}:model-package/models/4"],
    ),
    (
        "sagemaker",
        "DescribeModelPackage",
        {"ModelPackageName": f"{SM}:model-package/models/4"},
        None,
        "sagemaker:DescribeModelPackage",
        [f"{SM}:model-package/models/4"],
    ),
    (
        "sagemaker",
        "UpdateModelPackage",
        {"ModelPackageArn": f"{SM}:model-package/models/4", "ModelApprovalStatus": "Approved"},
        None,
        "sagemaker:UpdateModelPackage",
        [f"{SM}:model-package/models/4"],
    ),
    (
        "greengrassv2",
        "CreateComponentVersion",
        {"inlineRecipe": RECIPE},
        None,
        "greengrass:CreateComponentVersion",
        [f"{GG}:components:com.example.Model"],
    ),
    (
        "greengrassv2",
        "CreateComponentVersion",
        {"inlineRecipe": b'{"ComponentName": "com.example.J"}'},
        None,
        "greengrass:CreateComponentVersion",
        [f"{GG}:components:com.example.J"],
    ),
    (
        "greengrassv2",
        "DescribeComponent",
        {"arn": f"{GG}:components:com.example.Model:versions:1.0.3"},
        None,
        "greengrass:DescribeComponent",
        [f"{GG}:components:com.example.Model:versions:1.0.3"],
    ),
    (
        "greengrassv2",
        "ListComponentVersions",
        {"arn": f"{GG}:components:com.example.Model"},
        None,
        "greengrass:ListComponentVersions",
        [f"{GG}:components:com.example.Model"],
    ),
    ("greengrassv2", "CreateDeployment", {"targetArn": GROUP}, None, "greengrass:CreateDeployment", ["*"]),
    (
        "greengrassv2",
        "GetDeployment",
        {"deploymentId": "d-1"},
        None,
        "greengrass:GetDeployment",
        [f"{GG}:deployments:d-1"],
    ),
    (
        "greengrassv2",
        "ListEffectiveDeployments",
        {"coreDeviceThingName": "edge-1"},
        None,
        "greengrass:ListEffectiveDeployments",
        [f"{GG}:coreDevices:edge-1"],
    ),
    ("greengrassv2", "ListCoreDevices", {}, None, "greengrass:ListCoreDevices", ["*"]),
    (
        "greengrassv2",
        "GetCoreDevice",
        {"coreDeviceThingName": "edge-1"},
        None,
        "greengrass:GetCoreDevice",
        [f"{GG}:coreDevices:edge-1"],
    ),
    (
        "greengrassv2",
        "ListInstalledComponents",
        {"coreDeviceThingName": "edge-1"},
        None,
        "greengrass:ListInstalledComponents",
        [f"{GG}:coreDevices:edge-1"],
    ),
    (
        "greengrassv2",
        "ResolveComponentCandidates",
        {"componentCandidates": [{"componentName": "c", "componentVersion": "1.0.0"}]},
        None,
        "greengrass:ResolveComponentCandidates",
        [f"{GG}:components:c:versions:1.0.0"],
    ),
    ("iot", "DescribeThingGroup", {"thingGroupName": "fleet"}, None, "iot:DescribeThingGroup", [GROUP]),
    (
        "iot",
        "ListThingsInThingGroup",
        {"thingGroupName": "fleet"},
        None,
        "iot:ListThingsInThingGroup",
        [GROUP],
    ),
    ("iot", "DescribeThing", {"thingName": "edge-1"}, None, "iot:DescribeThing", [f"{IOT}:thing/edge-1"]),
    ("iot", "DescribeEndpoint", {"endpointType": "iot:Data-ATS"}, None, "iot:DescribeEndpoint", ["*"]),
    (
        "iot-data",
        "GetThingShadow",
        {"thingName": "edge-1"},
        None,
        "iot:GetThingShadow",
        [f"{IOT}:thing/edge-1"],
    ),
    (
        "iot-data",
        "Publish",
        {"topic": "edge/edge-1/inference/request"},
        None,
        "iot:Publish",
        [f"{IOT}:topic/edge/edge-1/inference/request"],
    ),
    (
        "secretsmanager",
        "GetSecretValue",
        {"SecretId": f"arn:aws:secretsmanager:{R}:{A}:secret:v-AbC123"},
        None,
        "secretsmanager:GetSecretValue",
        [f"arn:aws:secretsmanager:{R}:{A}:secret:v-AbC123"],
    ),
    (
        "secretsmanager",
        "GetSecretValue",
        {"SecretId": "v"},
        {"SecretArn": f"arn:aws:secretsmanager:{R}:{A}:secret:v-AbC123"},
        "secretsmanager:GetSecretValue",
        [f"arn:aws:secretsmanager:{R}:{A}:secret:v-AbC123"],
    ),
    (
        "logs",
        "CreateLogStream",
        {"logGroupName": "/aws/lambda/fn", "logStreamName": "s"},
        None,
        "logs:CreateLogStream",
        [f"arn:aws:logs:{R}:{A}:log-group:/aws/lambda/fn:log-stream:s"],
    ),
    (
        "lambda",
        "Invoke",
        {"FunctionName": "fn"},
        None,
        "lambda:InvokeFunction",
        [f"arn:aws:lambda:{R}:{A}:function:fn"],
    ),
    (
        "lambda",
        "Invoke",
        {"FunctionName": "fn:live"},
        None,
        "lambda:InvokeFunction",
        [f"arn:aws:lambda:{R}:{A}:function:fn:live"],
    ),
    (
        "lambda",
        "Invoke",
        {"FunctionName": f"{A}:function:fn", "Qualifier": "3"},
        None,
        "lambda:InvokeFunction",
        [f"arn:aws:lambda:{R}:{A}:function:fn:3"],
    ),
    (
        "lambda",
        "Invoke",
        {"FunctionName": f"arn:aws:lambda:{R}:{A}:function:fn"},
        None,
        "lambda:InvokeFunction",
        [f"arn:aws:lambda:{R}:{A}:function:fn"],
    ),
    (
        "stepfunctions",
        "StartExecution",
        {"stateMachineArn": f"arn:aws:states:{R}:{A}:stateMachine:P", "name": "x"},
        None,
        "states:StartExecution",
        [f"arn:aws:states:{R}:{A}:stateMachine:P"],
    ),
    (
        "stepfunctions",
        "DescribeExecution",
        {"executionArn": f"arn:aws:states:{R}:{A}:execution:P:x"},
        None,
        "states:DescribeExecution",
        [f"arn:aws:states:{R}:{A}:execution:P:x"],
    ),
    (
        "cloudwatch",
        "PutMetricData",
        {"Namespace": "/aws/sagemaker/TrainingJobs"},
        None,
        "cloudwatch:PutMetricData",
        ["*"],
    ),
    (
        "events",
        "EnableRule",
        {"Name": "p-retrain-on-drift"},
        None,
        "events:EnableRule",
        [f"arn:aws:events:{R}:{A}:rule/p-retrain-on-drift"],
    ),
    (
        "events",
        "DisableRule",
        {"Name": "r", "EventBusName": "custom"},
        None,
        "events:DisableRule",
        [f"arn:aws:events:{R}:{A}:rule/custom/r"],
    ),
    (
        "events",
        "PutEvents",
        {"Entries": [{"Source": "s", "DetailType": "d", "Detail": "{}"}]},
        None,
        "events:PutEvents",
        [f"arn:aws:events:{R}:{A}:event-bus/default"],
    ),
    (
        "sts",
        "AssumeRole",
        {"RoleArn": "arn:aws:iam::123456789012:role/T", "RoleSessionName": "s"},
        None,
        "sts:AssumeRole",
        ["arn:aws:iam::123456789012:role/T"],
    ),
]


@pytest.mark.parametrize(("service", "operation", "params", "facts", "action", "resources"), ROWS)
def test_action_and_resources(
    service: str, operation: str, params: dict, facts: dict | None, action: str, resources: list[str]
) -> None:
    assert iam_action(service, operation, params) == action
    assert list(resource_arns(service, operation, params, A, R, facts=facts)) == resources
