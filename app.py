#!/usr/bin/env python3
"""CDK entry point: ``npx aws-cdk@2.1148.1 synth`` / ``deploy`` (see docs/deploy-aws.md).

Also runs as ``python app.py`` (writes ``cdk.out/``); ``cdk.json``'s context is loaded either way.
"""

from pipeline.statemachine.node import use_bundled_node

use_bundled_node()  # before anything imports aws_cdk

from infra.app import build_app  # noqa: E402

if __name__ == "__main__":
    app, _ = build_app()
    app.synth()
