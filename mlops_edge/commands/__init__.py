"""One module per ``mlops-edge`` command group; each parses options and calls a plain function."""
