"""Command line of the deployer: ``python -m deploy <command> ...`` (also ``sm-deploy``).

Each command module exposes ``register(subparsers)``, adding its parsers with
``set_defaults(handler=...)``; a handler takes the parsed arguments and returns an exit
status. Errors derived from ``DeployError`` are printed without a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys

from deploy import commands as stackset_commands
from deploy import flows, publish_cli
from deploy.errors import DeployError, InputError
from deploy.local import cli as local_cli

COMMAND_MODULES: list = [local_cli, publish_cli, stackset_commands, flows]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m deploy", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except DeployError as error:
        if getattr(args, "json", False):
            payload = error.to_dict() if isinstance(error, InputError) else {"error": "failed", "message": str(error)}
            print(json.dumps(payload, indent=2, sort_keys=True))
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted: re-run the same command to pick up where it stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
