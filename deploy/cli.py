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
import importlib.metadata
import json
import os
import sys

import argcomplete
from botocore.exceptions import BotoCoreError, ClientError

from deploy.catalog import command as publish_command
from deploy.common.awssetup import explain
from deploy.common.clients import configure_sessions
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


def _prog() -> str:
    """How the user called us: ``sm-deploy`` (the console script) or ``python -m deploy``."""
    name = os.path.basename(sys.argv[0] or "")
    return name if name and not name.startswith(("__main__", "-")) and not name.endswith(".py") else "python -m deploy"


def version() -> str:
    try:
        return importlib.metadata.version("sagemaker-stackset-deploy")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


def _add_aws_options(parser: argparse.ArgumentParser) -> None:
    """``--profile`` and ``--region`` on a command that talks to AWS (kept when it has its own)."""
    for flag, text in (
        ("--profile", "AWS profile to use (default: the usual chain: AWS_PROFILE, environment, role)"),
        ("--region", "AWS region (default: the manifest's or catalog's, else AWS_REGION); a conflict is an error"),
    ):
        try:
            parser.add_argument(flag, help=text)
        except argparse.ArgumentError:
            pass  # the command defines it itself (invoke --region: the endpoint's region)


def build_parser(with_local: bool = False) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=_prog(), description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _register_local(subparsers, load=with_local)
    for module in COMMAND_MODULES:
        module.register(subparsers)
    for name, command in subparsers.choices.items():
        if name != LOCAL_COMMAND:
            _add_aws_options(command)
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
    # Shell completion: `eval "$(register-python-argcomplete sm-deploy)"` (a no-op otherwise).
    argcomplete.autocomplete(parser)
    args = parser.parse_args(argv)
    configure_sessions(getattr(args, "profile", None), getattr(args, "region", None))
    try:
        return args.handler(args)
    except DeployError as error:
        return _report(error, as_json=getattr(args, "json", False))
    except (BotoCoreError, ClientError) as error:
        explained = explain(error)
        if explained is None:
            raise
        return _report(explained, as_json=getattr(args, "json", False))
    except KeyboardInterrupt:
        print("interrupted: re-run the same command to pick up where it stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
