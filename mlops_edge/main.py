"""Entry point of `mlops-edge`.

Sub-commands are imported only when invoked, so `mlops-edge --help` stays instant even though the
commands behind it pull in xgboost, onnxruntime, moto or the CDK.
"""

from __future__ import annotations

import importlib

import click

# name -> (module under mlops_edge.commands, attribute, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": ("run", "run", "Run the whole pipeline end to end on the embedded local cloud."),
    "train": ("ml", "train", "Train an XGBoost model under the SageMaker script-mode contract."),
    "export": ("ml", "export", "Export a trained model to ONNX, prove parity, write manifest + golden set."),
    "predict": ("ml", "predict", "Predict with an exported model directory using the edge engine."),
    "demo": ("ml", "demo", "Train, export, prove parity and predict on the bundled demo datasets."),
    "local": ("local", "local", "Start and inspect the embedded local cloud."),
    "device": ("device", "device", "Run a simulated Greengrass core device."),
    "execute": ("aws", "execute", "Start an execution of the deployed state machine."),
    "executions": ("aws", "executions", "List and inspect state machine executions."),
    "devices": ("aws", "devices", "List Greengrass core devices and their components."),
    "logs": ("aws", "logs", "Print a pipeline Lambda function's CloudWatch logs."),
    "mqtt": ("mqtt", "mqtt", "MQTT test client: subscribe and publish."),
    "infer": ("mqtt", "infer", "Send one inference request to a device and print its answer."),
    "component": ("component", "component", "Build a working-tree component; deploy it to one device."),
    "console": ("console", "console", "Serve the local web console: executions, models, devices, MQTT."),
}


class LazyGroup(click.Group):
    """A click group that imports a command's module only when that command runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = COMMANDS.get(cmd_name)
        if spec is None:
            return None
        module_name, attr, _ = spec
        try:
            module = importlib.import_module(f"mlops_edge.commands.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"mlops_edge.commands.{module_name}":
                return _unavailable(cmd_name)
            raise
        return getattr(module, attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_) for name, (_, _, help_) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _unavailable(name: str) -> click.Command:
    @click.command(name=name, help=COMMANDS[name][2])
    def _cmd() -> None:
        raise click.ClickException(f"'{name}' is not available in this build yet")

    return _cmd


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mlops-edge")
def main() -> None:
    """mlops-edge: XGBoost to ONNX to Greengrass V2 edge devices, verified over MQTT."""


if __name__ == "__main__":
    main()
