"""Everyday AWS set-up problems end in one line naming the cause and the fix: exit 2, no
traceback, within seconds, and one JSON error document with --json."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = str(ROOT / "examples" / "manifest.yaml")
CATALOG = str(ROOT / "examples" / "catalog.yaml")
CLEAN = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")


def deploy(argv: list[str], tmp_path: Path, **env: str) -> tuple[int, str, str, float]:
    """Run ``python -m deploy`` as a user would, in a clean AWS environment plus ``env``."""
    import os

    environment = {k: v for k, v in os.environ.items() if k not in CLEAN}
    environment.update(
        {
            "AWS_CONFIG_FILE": str(tmp_path / "config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "HOME": str(tmp_path),
            **env,
        }
    )
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "deploy", *argv], capture_output=True, text=True, env=environment, cwd=ROOT, timeout=120
    )
    return result.returncode, result.stdout, result.stderr, time.monotonic() - started


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


SSO_CONFIG = """\
[profile sso]
sso_session = corp
sso_account_id = 123456789012
sso_role_name = Admin
region = us-east-1
[sso-session corp]
sso_start_url = https://example.awsapps.com/start
sso_region = us-east-1
"""


@pytest.mark.parametrize(
    "argv, env, words",
    [
        (["--profile", "nosuch"], {}, "The config profile (nosuch) could not be found"),
        ([], {"AWS_PROFILE": "nosuch"}, "The config profile (nosuch) could not be found"),
        ([], {"AWS_PROFILE": "sso"}, "aws sso login --profile sso"),
        ([], {}, "no AWS credentials found"),
        (
            [],
            {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"},
            "is the local AWS running?",
        ),
    ],
)
@pytest.mark.parametrize("command", [["plan", "--manifest", MANIFEST], ["publish", "--catalog", CATALOG]])
def test_set_up_problems_are_one_line_exit_2(tmp_path, argv, env, words, command):
    (tmp_path / "config").write_text(SSO_CONFIG)
    code, out, err, seconds = deploy([*command, *argv], tmp_path, **env)
    assert code == 2 and words in one_line(err), err
    assert seconds < 30  # bounded: no ten backed-off retries before the user hears why
    code, out, err, _ = deploy([*command, *argv, "--json"], tmp_path, **env)
    assert code == 2 and json.loads(out)["error"] == "aws_setup" and words in json.loads(out)["message"]


def test_region_conflicting_with_the_manifest_is_an_input_error(tmp_path):
    code, out, err, _ = deploy(["plan", "--manifest", MANIFEST, "--region", "eu-west-1"], tmp_path)
    assert code == 2 and "--region eu-west-1 conflicts with the manifest's admin_region us-east-1" in one_line(err)


def test_version_on_the_module_and_its_console_script(tmp_path):
    code, out, err, _ = deploy(["--version"], tmp_path)
    assert code == 0 and out.startswith("python -m deploy ") and out.split()[-1][0].isdigit()
    script = Path(sys.executable).parent / "sm-deploy"
    if script.exists():
        result = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=True)
        assert result.stdout.startswith("sm-deploy ")


def test_every_aws_command_takes_profile_and_region():
    from deploy.cli import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # noqa: SLF001 - argparse has no public accessor
    for name, command in commands.items():
        if name == "local":
            continue
        flags = {flag for action in command._actions for flag in action.option_strings}
        assert {"--profile", "--region"} <= flags, name


def test_shell_completion_offers_the_commands(tmp_path):
    """argcomplete's protocol: completions on fd 8, its debug stream on fd 9 (as the shell hook sets them)."""
    import os
    import shlex

    environment = {**os.environ, "_ARGCOMPLETE": "1", "COMP_LINE": "sm-deploy pl", "COMP_POINT": "12"}
    command = f"{shlex.quote(sys.executable)} -m deploy 8>&1 9>/dev/null"
    result = subprocess.run(["bash", "-c", command], env=environment, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.split() == ["plan"], result.stderr


@pytest.mark.parametrize(
    "error, words",
    [
        ("ExpiredToken", "the AWS session has expired (ExpiredToken)"),
        ("InvalidClientTokenId", "the AWS credentials were refused (InvalidClientTokenId)"),
    ],
)
def test_expired_and_refused_credentials_are_explained(error, words):
    from botocore.exceptions import ClientError

    from deploy.common.awssetup import explain

    explained = explain(ClientError({"Error": {"Code": error, "Message": "m"}}, "GetCallerIdentity"))
    assert explained is not None and words in str(explained) and explained.exit_code == 2
    assert explain(ClientError({"Error": {"Code": "Throttling", "Message": "m"}}, "X")) is None  # a real failure


def test_a_wrong_region_is_one_line_naming_region(tmp_path):
    catalog = tmp_path / "catalog.yaml"  # the example without its region: --region decides
    catalog.write_text("".join(line for line in open(CATALOG) if not line.startswith("region:")))
    code, out, err, seconds = deploy(
        ["publish", "--catalog", str(catalog), "--root", str(ROOT), "--region", "us-east-9"],
        tmp_path,
        AWS_ACCESS_KEY_ID="x",
        AWS_SECRET_ACCESS_KEY="y",
    )
    line = one_line(err)
    assert code == 2 and "us-east-9" in line and "--region" in line, err
    assert seconds < 30
