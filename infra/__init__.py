"""CDK app of mlops-edge: the pipeline stack, the EC2 edge core stack and the CI/CD stack.

``pipeline.statemachine`` points jsii at the bundled Node (``pipeline/statemachine/node.py``) when it
is imported; ``app.py`` does it explicitly before anything imports ``aws_cdk``.
"""
