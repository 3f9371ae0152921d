"""`mlops-edge console`: the local web console, on 127.0.0.1 behind a token printed in its URL.

It reads everything through boto3 with the standard AWS environment and the MQTT settings of
`mlops-edge mqtt`, so it shows the local cloud (through `mlops-edge local exec --`) or an AWS account.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from mlops_edge.commands.common import console as out
from mlops_edge.commands.common import state_machine_arn


def find_bucket(cloudformation: Any) -> str:
    """The pipeline's bucket, where the Monitoring page reads the drift reports: $MLOPS_EDGE_BUCKET,
    else the deployed stack's ``ArtifactBucketName`` output."""
    from mlops_edge.environment.component_dev.publish import find_bucket as from_stack

    return os.environ.get("MLOPS_EDGE_BUCKET") or from_stack(cloudformation)


@click.command()
@click.option("--port", type=int, default=None, help="Port on 127.0.0.1 (default 8350, or a free one).")
@click.option("--no-browser", is_flag=True, help="Print the URL; do not open a browser.")
@click.option("--state-machine", "machine", help="State machine ARN (default: the deployed mlops-edge one).")
@click.option(
    "--example-input",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="What Start execution is prefilled with (default: pipeline/config/example-input.json).",
)
@click.option(
    "--runtime-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path(".local/console.json"),
    show_default=True,
    help="Where the URL (with its token) is written, readable by you only.",
)
def console(
    port: int | None, no_browser: bool, machine: str | None, example_input: Path | None, runtime_file: Path
) -> None:
    """Serve the web console: executions and their graph, models, devices, drift, MQTT test client."""
    from mlops_edge.console.server import DEFAULT_PORT, ConsoleSettings, serve

    settings = ConsoleSettings(
        port=DEFAULT_PORT if port is None else port,
        open_browser=not no_browser,
        runtime_file=runtime_file.resolve(),
        example_input=example_input,
    )
    try:
        serve(
            settings,
            find_state_machine=lambda sfn: state_machine_arn(sfn, machine),
            find_bucket=find_bucket,
            echo=out.print,
        )
    except OSError as exc:
        raise click.ClickException(f"cannot listen on 127.0.0.1:{settings.port}: {exc.strerror}") from exc
