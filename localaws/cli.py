"""``python -m deploy local up|down|status|env``: the local AWS for offline runs.

The ``local`` command of the deployer's command line, kept in :mod:`localaws`:
``deploy.cli`` imports this module (``register(subparsers)``) only when ``local`` is the
command, so the other commands run without moto installed.

``up`` prints only ``export`` lines on stdout (so ``eval "$(python -m deploy local up)"``
works) and what it created on stderr; every other deploy command then talks to the
local server unchanged, through ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import json
import sys

from localaws import lifecycle
from localaws.seed import DEFAULT_ORG_FILE


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "local",
        help="run a local AWS (moto on 127.0.0.1) seeded with an Organization",
        description="Run a local AWS (moto on 127.0.0.1, patched) seeded with an Organization; "
        "every deploy command works against it through AWS_ENDPOINT_URL.",
    )
    actions = parser.add_subparsers(dest="local_action", metavar="ACTION", required=True)

    def add(name, handler, help_text):
        sub = actions.add_parser(name, help=help_text, description=help_text)
        sub.add_argument(
            "--state-dir",
            help=f"where the pid, log and state files live (default {lifecycle.STATE_DIR}, or $LOCAL_AWS_STATE_DIR)",
        )
        sub.set_defaults(handler=handler)
        return sub

    up = add("up", run_up, "start the local AWS (unless running), seed it, print the environment to use")
    up.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    up.add_argument("--org", default=str(DEFAULT_ORG_FILE), help=f"org file to seed from (default {DEFAULT_ORG_FILE})")
    add("down", run_down, "stop the local AWS this state dir started (never any other process)")
    status = add(
        "status",
        run_status,
        "whether the local AWS runs, where, and what it was seeded with (exit status 3 when it does not run)",
    )
    status.add_argument("--json", action="store_true", help="print the state as JSON")
    add("env", run_env, "print the export lines for the running local AWS")


def _summary(state: dict) -> str:
    lines = [
        f"local AWS on {state['endpoint_url']} (pid {state['pid']}), region {state['region']}",
        f"organization {state['organization_id']}, root {state['root_id']}",
    ]
    management = state["management_account"]
    lines.append(f"  {management['id']}  {management['name']} (management)")
    for name, account in state["accounts"].items():
        ou = account["ou"] or "root"
        lines.append(f"  {account['id']}  {name}  in {ou} ({state['organizational_units'].get(ou, state['root_id'])})")
    lines.append(f"trusted access: {', '.join(state['trusted_access']) or 'none'}")
    return "\n".join(lines)


def run_up(args) -> int:
    state, started = lifecycle.up(args.state_dir, port=args.port, org_file=args.org)
    print(("started and seeded " if started else "already running: ") + _summary(state), file=sys.stderr)
    print("\n".join(lifecycle.export_lines(lifecycle.environment(state["endpoint_url"], state["region"]))))
    return 0


def run_down(args) -> int:
    print(lifecycle.stop(args.state_dir), file=sys.stderr)
    return 0


def run_status(args) -> int:
    server = lifecycle.running_server(args.state_dir)
    state = lifecycle.read_state(args.state_dir) if server else None
    if args.json:
        print(json.dumps({"running": bool(server), "state": state}, indent=2, sort_keys=True))
    elif server:
        print(_summary(state) if state else f"local AWS on {server.endpoint_url} (pid {server.pid}), not seeded")
    else:
        print(f"no local AWS running for {lifecycle.state_dir_path(args.state_dir)}")
    return 0 if server else 3


def run_env(args) -> int:
    server = lifecycle.running_server(args.state_dir)
    if not server:
        raise lifecycle.LocalAWSError("no local AWS running: `python -m deploy local up` first")
    state = lifecycle.read_state(args.state_dir) or {}
    print(
        "\n".join(lifecycle.export_lines(lifecycle.environment(server.endpoint_url, state.get("region", "us-east-1"))))
    )
    return 0
