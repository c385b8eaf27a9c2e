"""Progress without a terminal (CI logs): a line when each operation starts and ends, and a
"still running" line at least every heartbeat while it runs; with a terminal, rich's bar."""

from __future__ import annotations

import re

from tests.test_deploy_e2e import run, self_managed, unique, write_manifest


def test_a_running_operation_prints_start_heartbeat_and_end_lines(local_aws, workdir, capsys, monkeypatch):
    monkeypatch.setenv("SM_DEPLOY_PROGRESS_SECONDS", "0.5")
    name = unique("progress")
    path = write_manifest(workdir, [self_managed(name, [local_aws.account_id("ml-development")], ["us-east-1"])])
    local_aws.control("stacksets", operation_polls=2)  # each operation stays RUNNING for two polls (~3 s)
    try:
        code, _, err = run(["apply", "--manifest", path], capsys)
    finally:
        local_aws.control("stacksets", operation_polls=0)
    assert code == 0, err
    lines = err.splitlines()
    started = [i for i, line in enumerate(lines) if re.match(rf"{name}: create_instances ssd-", line)]
    beats = [i for i, line in enumerate(lines) if line.startswith(f"{name}: still running: ")]
    ended = [i for i, line in enumerate(lines) if line == f"{name}: succeeded" or line.startswith(f"{name}: succeeded")]
    assert started and beats and ended, err
    assert started[0] < beats[0] < ended[-1]
    assert re.search(r"still running: .*; \d+/\d+ instance\(s\) done, \d+s elapsed", lines[beats[0]])
    assert run(["destroy", "--yes", "--manifest", path], capsys)[0] == 0


def test_no_heartbeat_when_disabled(local_aws, workdir, capsys, monkeypatch):
    monkeypatch.setenv("SM_DEPLOY_PROGRESS_SECONDS", "0")
    name = unique("quiet")
    path = write_manifest(workdir, [self_managed(name, [local_aws.account_id("ml-development")], ["us-east-1"])])
    code, _, err = run(["apply", "--manifest", path], capsys)
    assert code == 0 and "still running" not in err
    assert run(["destroy", "--yes", "--manifest", path], capsys)[0] == 0


def test_the_human_plan_is_the_plan_commands_output_on_stdout(local_aws, workdir, capsys):
    from deploy.cli import main

    name = unique("stdout")
    path = write_manifest(workdir, [self_managed(name, [local_aws.account_id("ml-development")], ["us-east-1"])])
    assert main(["plan", "--manifest", path]) == 0
    captured = capsys.readouterr()
    assert f"{name}: create" in captured.out and "plan: 1 stack set(s) to change" in captured.out
    assert f"{name}: create" not in captured.err
    assert main(["plan", "--json", "--manifest", path]) == 0
    captured = capsys.readouterr()
    assert captured.out.lstrip().startswith("{") and f"{name}: create" in captured.err


def test_only_dependencies_aws_releases_by_itself_are_retried_on_destroy():
    from deploy.stacksets.aws import InstanceFailure
    from deploy.stacksets.rollout import _released_later

    vpc = InstanceFailure(
        "111111111111", "us-east-1", "FAILED", "The vpc vpc-1 has dependencies and cannot be deleted."
    )
    eni = InstanceFailure("222222222222", "us-east-1", "FAILED", "DependencyViolation: eni-1 is in use")
    denied = InstanceFailure("333333333333", "us-east-1", "FAILED", "AccessDenied: not authorized")
    assert _released_later([vpc, eni])
    assert not _released_later([vpc, denied]) and not _released_later([])
