"""``python -m local_cloud serve --state-dir DIR [--ready-file F] [--port N] [--mqtt-port N]``: run
the endpoint (and its broker); a port 0 is any free one."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m local_cloud")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the endpoint process in the foreground")
    serve.add_argument("--state-dir", type=Path, default=Path(".local"))
    serve.add_argument("--ready-file", type=Path, default=None)
    serve.add_argument("--port", type=int, default=0)
    serve.add_argument("--mqtt-port", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("local_cloud").setLevel(logging.INFO)
    if os.environ.get("LOCAL_CLOUD_DEBUG"):
        logging.getLogger("local_cloud").setLevel(logging.DEBUG)
    from local_cloud.server import serve as run

    run(args.state_dir.resolve(), args.ready_file, args.port, args.mqtt_port)


if __name__ == "__main__":
    main()
