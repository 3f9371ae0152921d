"""`mlops-edge completion bash|zsh|fish`: print click's completion script for the shell.

The script calls `mlops-edge` back with ``_MLOPS_EDGE_COMPLETE=<shell>_complete`` to complete each
word (click's mechanism, the same as ``_MLOPS_EDGE_COMPLETE=bash_source mlops-edge``); the README's
"Shell completion" section says where to put it for each shell.
"""

from __future__ import annotations

import click

PROG_NAME = "mlops-edge"
COMPLETE_VAR = "_MLOPS_EDGE_COMPLETE"


@click.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the completion script for SHELL (bash, zsh or fish); see the README to install it.

    \b
    bash:  eval "$(mlops-edge completion bash)"          (in ~/.bashrc)
    zsh:   eval "$(mlops-edge completion zsh)"           (in ~/.zshrc)
    fish:  mlops-edge completion fish > ~/.config/fish/completions/mlops-edge.fish
    """
    from click.shell_completion import get_completion_class

    completer = get_completion_class(shell)
    if completer is None:  # click knows these three; kept for a click without one of them
        raise click.ClickException(f"click has no completion for {shell}")
    root = ctx.find_root().command
    click.echo(completer(root, {}, PROG_NAME, COMPLETE_VAR).source())
