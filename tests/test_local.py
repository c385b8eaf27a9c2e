"""The local AWS: lifecycle through the CLI, pid safety, the seeded Organization."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from deploy.cli import main
from localaws import lifecycle
from tests.conftest import ORG_FILE


def test_up_status_env_down_through_the_cli(tmp_path, capsys):
    state_dir = str(tmp_path / "state")
    assert main(["local", "up", "--state-dir", state_dir, "--org", str(ORG_FILE)]) == 0
    try:
        out = capsys.readouterr().out.splitlines()
        exports = dict(line.removeprefix("export ").split("=", 1) for line in out if line.startswith("export "))
        assert exports["AWS_ACCESS_KEY_ID"] == "testing" and exports["AWS_DEFAULT_REGION"] == "us-east-1"
        assert exports["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
        assert any(line.startswith("unset ") and "AWS_PROFILE" in line for line in out)
        server = lifecycle.running_server(state_dir)
        assert server is not None and exports["AWS_ENDPOINT_URL"] == server.endpoint_url

        # a second up is idempotent: same server, not reseeded
        assert main(["local", "up", "--state-dir", state_dir]) == 0
        assert "already running" in capsys.readouterr().err
        assert lifecycle.running_server(state_dir).pid == server.pid

        assert main(["local", "status", "--json", "--state-dir", state_dir]) == 0
        status = json.loads(capsys.readouterr().out)
        assert status["running"] is True and status["state"]["pid"] == server.pid
        assert main(["local", "env", "--state-dir", state_dir]) == 0
        assert f"export AWS_ENDPOINT_URL={server.endpoint_url}" in capsys.readouterr().out
    finally:
        assert main(["local", "down", "--state-dir", state_dir]) == 0
    assert "stopped" in capsys.readouterr().err
    assert not lifecycle.is_our_server(server.pid, lifecycle.state_dir_path(state_dir))
    assert main(["local", "status", "--state-dir", state_dir]) == 3
    assert main(["local", "env", "--state-dir", state_dir]) == 1
    assert main(["local", "down", "--state-dir", state_dir]) == 0  # nothing to stop is not an error


@pytest.mark.parametrize("argv_tail", [[], ["localaws.server", "--ready-file", "/elsewhere/server.json"]])
def test_down_never_signals_a_foreign_pid(tmp_path, argv_tail):
    """A pid file naming any other process (even another state dir's server) is dropped, the process left alone."""
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    foreign = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", *argv_tail])
    try:
        (state_dir / lifecycle.PID_FILE).write_text(f"{foreign.pid}\n")
        (state_dir / lifecycle.READY_FILE).write_text(
            json.dumps({"pid": foreign.pid, "port": 1, "endpoint_url": "http://127.0.0.1:1"})
        )
        message = lifecycle.stop(state_dir)
        assert "not our server" in message
        assert foreign.poll() is None, "down signalled a process it did not start"
        assert not (state_dir / lifecycle.PID_FILE).exists()
        assert lifecycle.running_server(state_dir) is None
    finally:
        foreign.kill()
        foreign.wait()


def test_down_never_signals_an_impostor_naming_our_module_and_ready_file(tmp_path):
    """A process whose command line mentions the server module and this state dir's ready file,
    answering on the recorded port, is still left alone unless it proves the ready file's nonce."""
    state_dir = (tmp_path / "state").resolve()
    state_dir.mkdir()
    ready = state_dir / lifecycle.READY_FILE
    serve = (
        "import http.server, json, os\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        body = json.dumps({'pid': os.getpid(), 'proof': 'guess'}).encode()\n"
        "        self.send_response(200); self.end_headers(); self.wfile.write(body)\n"
        "server = http.server.HTTPServer(('127.0.0.1', 0), H)\n"
        "print(server.server_address[1], flush=True)\n"
        "server.serve_forever()\n"
    )
    impostor = subprocess.Popen(
        [sys.executable, "-c", serve, "localaws.server", "--ready-file", str(ready)], stdout=subprocess.PIPE, text=True
    )
    try:
        port = int(impostor.stdout.readline())
        (state_dir / lifecycle.PID_FILE).write_text(f"{impostor.pid}\n")
        ready.write_text(
            json.dumps(
                {"pid": impostor.pid, "port": port, "endpoint_url": f"http://127.0.0.1:{port}", "nonce": "n" * 64}
            )
        )
        assert lifecycle.is_our_server(impostor.pid, state_dir), "the impostor must pass the command-line check"
        message = lifecycle.stop(state_dir)
        assert "did not prove it" in message and "signalled nothing" in message
        assert impostor.poll() is None, "down signalled a process that could not prove it is our server"
    finally:
        impostor.kill()
        impostor.wait()


def test_a_real_server_proves_its_identity(tmp_path):
    state_dir = tmp_path / "state"
    with lifecycle.environment_set({}, ()):
        state, _ = lifecycle.up(state_dir, org_file=ORG_FILE)
    try:
        info = json.loads((lifecycle.state_dir_path(state_dir) / lifecycle.READY_FILE).read_text())
        assert lifecycle.identifies_as(info["pid"], lifecycle.state_dir_path(state_dir))
        assert not lifecycle.identifies_as(info["pid"] + 1, lifecycle.state_dir_path(state_dir))
        mode = (lifecycle.state_dir_path(state_dir) / lifecycle.READY_FILE).stat().st_mode & 0o777
        assert mode == 0o600
    finally:
        assert "stopped" in lifecycle.stop(state_dir)


def test_bad_org_file_is_rejected_before_anything_starts(tmp_path, capsys):
    org = tmp_path / "org.yaml"
    org.write_text(
        textwrap.dedent("""
        organizational_units: [development]
        accounts:
          - {name: a, email: a@example.com, ou: staging}
    """)
    )
    state_dir = tmp_path / "state"
    assert main(["local", "up", "--state-dir", str(state_dir), "--org", str(org)]) == 2
    err = capsys.readouterr().err
    assert str(org) in err and "accounts[0]" in err and "'ou'" in err and "staging" in err
    assert not (state_dir / lifecycle.PID_FILE).exists()


@pytest.mark.parametrize(
    "body, key",
    [
        ("accounts: [{name: a, email: not-an-email}]", "email"),
        ("accounts: [{name: a}, {name: a}]", "name"),
        ("colour: blue", "colour"),
        ("organizational_units: [ok, 'a//b']", None),
        ("management_account: {id: '999999999999'}", "id"),
        ("random_seed: seven", "random_seed"),
    ],
)
def test_org_file_errors_name_the_key(tmp_path, body, key):
    from deploy.common.errors import InputError
    from localaws.seed import load_org_file

    org = tmp_path / "org.yaml"
    org.write_text(body + "\n")
    with pytest.raises(InputError) as caught:
        load_org_file(org)
    assert caught.value.source == str(org)
    if key:
        assert caught.value.key == key


def test_nested_ou_paths_create_parents_first(tmp_path):
    from localaws.seed import load_org_file

    org = tmp_path / "org.yaml"
    org.write_text(
        "organizational_units: [workloads/staging, workloads/production, sandbox]\n"
        "accounts: [{name: s, ou: workloads/staging}]\n"
    )
    spec = load_org_file(org)
    assert spec.ou_paths == ["workloads", "workloads/staging", "workloads/production", "sandbox"]
    assert spec.accounts == [{"name": "s", "email": "s@example.com", "ou": "workloads/staging"}]


def test_seeded_organization_matches_the_org_file_and_the_state(local_aws):
    org = local_aws.client("organizations")
    assert org.describe_organization()["Organization"]["MasterAccountId"] == local_aws.management_account_id
    root = org.list_roots()["Roots"][0]["Id"]
    ous = {
        ou["Name"]: ou["Id"] for ou in org.list_organizational_units_for_parent(ParentId=root)["OrganizationalUnits"]
    }
    assert ous == {path: local_aws.ou_id(path) for path in ("development", "staging", "production")}
    for name, account in local_aws.state["accounts"].items():
        parents = org.list_parents(ChildId=account["id"])["Parents"]
        assert parents == [{"Id": local_aws.ou_id(account["ou"]), "Type": "ORGANIZATIONAL_UNIT"}], name
        assert org.describe_account(AccountId=account["id"])["Account"]["Name"] == name
    enabled = {
        item["ServicePrincipal"] for item in org.list_aws_service_access_for_organization()["EnabledServicePrincipals"]
    }
    assert "member.org.stacksets.cloudformation.amazonaws.com" in enabled
    role = local_aws.client("iam").get_role(RoleName="AWSCloudFormationStackSetAdministrationRole")["Role"]
    assert role["Arn"] == local_aws.state["stackset_administration_role_arn"]
    state_file = json.loads((local_aws.state_dir / "state.json").read_text())
    assert state_file["accounts"] == local_aws.state["accounts"]
    # a member account is reachable through the role AWS creates with it
    dev = local_aws.account_id("ml-development")
    assert local_aws.client("sts", account="ml-development").get_caller_identity()["Account"] == dev


def test_nested_ous_are_seeded_under_their_parents(tmp_path):
    """Seeding a second server from an org file with nested OUs (own state dir)."""
    org = tmp_path / "org.yaml"
    org.write_text(
        "random_seed: 7\norganizational_units: [workloads/staging]\n"
        "accounts: [{name: s, ou: workloads/staging}]\nstackset_administration_role: false\n"
    )
    state, started = lifecycle.up(tmp_path / "state", org_file=org)
    try:
        assert started
        import boto3

        client = boto3.client(
            "organizations",
            endpoint_url=state["endpoint_url"],
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        workloads, staging = (
            state["organizational_units"]["workloads"],
            state["organizational_units"]["workloads/staging"],
        )
        assert client.list_parents(ChildId=staging)["Parents"][0]["Id"] == workloads
        assert client.list_parents(ChildId=state["accounts"]["s"]["id"])["Parents"][0]["Id"] == staging
        assert state["stackset_administration_role_arn"] is None
    finally:
        lifecycle.stop(tmp_path / "state")


def test_installed_moto_is_the_range_the_patches_are_tested_with():
    import moto

    from localaws import SUPPORTED_MOTO, moto_version_supported

    low, high = (".".join(map(str, bound)) for bound in SUPPORTED_MOTO)
    assert moto_version_supported(moto.__version__), (
        f"moto {moto.__version__} is installed, but localaws.patches are tested with moto >={low},<{high}: "
        "re-test every patch against this moto and move SUPPORTED_MOTO and setup.cfg's [local] extra together"
    )
    assert moto_version_supported("5.2.5") and moto_version_supported("5.2.9.dev1")
    assert not moto_version_supported("5.2.4") and not moto_version_supported("5.3.0")


def test_the_deployer_never_imports_the_local_aws():
    code = (
        "import sys, deploy.cli; bad = [m for m in sys.modules if m.split('.')[0] in ('localaws', 'moto')]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
