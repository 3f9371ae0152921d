"""CDK app of mlops-edge: the pipeline stack, the EC2 edge core stack and the CI/CD stack.

Import :func:`infra.node.use_bundled_node` before anything imports ``aws_cdk``: jsii starts its
Node.js process on the first import, and only then is ``JSII_NODE`` read.
"""
