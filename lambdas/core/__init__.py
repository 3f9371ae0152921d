"""Tested cores of the Lambda handlers: plain functions over injected boto3 clients.

Each handler in ``lambdas/`` reads its environment once (``Settings.from_env``), then calls one
core function with clients from ``pipeline.aws.client``. Tests pass stubbed clients instead.
"""
