"""Deploying the pipeline onto the embedded local cloud, the way `cdk deploy` does on AWS.

Everything here goes through the public AWS APIs (boto3 at `AWS_ENDPOINT_URL`): the same
functions, state machine, bucket, registry group and thing group the CDK app creates.
"""
