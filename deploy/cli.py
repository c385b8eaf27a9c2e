"""Command line of the deployer: ``python -m deploy <command> ...`` (also ``sm-deploy``).

Each command module exposes ``register(subparsers)``, adding its parsers with
``set_defaults(handler=...)``; a handler takes the parsed arguments and returns an exit
status. Errors derived from ``DeployError`` are printed without a traceback.

The ``local`` command belongs to :mod:`localaws` (the emulator, installed with the
``[local]`` extra): it is imported only when that command is used, so the deployer and
the publisher never load it.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

from deploy.catalog import command as publish_command
from deploy.common.errors import DeployError, InputError
from deploy.common.redact import redacted_output
from deploy.flows import cli as flows_cli
from deploy.stacksets import commands as stackset_commands

COMMAND_MODULES: list = [publish_command, stackset_commands, flows_cli]
LOCAL_COMMAND = "local"
LOCAL_HELP = "run a local AWS (moto on 127.0.0.1) seeded with an Organization"
LOCAL_MODULE = "localaws.cli"


def _register_local(subparsers, load: bool) -> None:
    """The real ``local`` parser when it is used, a one-line entry in ``--help`` otherwise."""
    if not load:
        subparsers.add_parser(LOCAL_COMMAND, help=LOCAL_HELP)
        return
    try:
        module = importlib.import_module(LOCAL_MODULE)
    except ImportError as error:
        raise InputError(
            f"the local AWS is not installed ({error}): pip install 'sagemaker-stackset-deploy[local]'"
        ) from None
    module.register(subparsers)


def build_parser(with_local: bool = False) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m deploy", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _register_local(subparsers, load=with_local)
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def _report(error: DeployError, as_json: bool) -> int:
    if as_json:
        payload = error.to_dict() if isinstance(error, InputError) else {"error": "failed", "message": str(error)}
        print(json.dumps(payload, indent=2, sort_keys=True))
    print(f"error: {error}", file=sys.stderr)
    return error.exit_code


def main(argv=None) -> int:
    with redacted_output():  # every secret value the command learns is masked in all it prints
        return _main(sys.argv[1:] if argv is None else list(argv))


def _main(argv: list[str]) -> int:
    try:
        parser = build_parser(with_local=argv[:1] == [LOCAL_COMMAND])
    except DeployError as error:
        return _report(error, as_json="--json" in argv)
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except DeployError as error:
        return _report(error, as_json=getattr(args, "json", False))
    except KeyboardInterrupt:
        print("interrupted: re-run the same command to pick up where it stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
