"""``python -m localaws.demo``: the main job end to end on its own local AWS, which it always stops."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import yaml

from localaws import demo, lifecycle

ROOT = Path(__file__).resolve().parents[1]

ENDPOINT_TEMPLATE = textwrap.dedent(
    """\
    AWSTemplateFormatVersion: '2010-09-09'
    Description: A stand-in model endpoint
    Parameters:
      EnvName: {Type: String, Default: mlops}
    Resources:
      Model:
        Type: AWS::SageMaker::Model
        Properties:
          ModelName: !Sub '${EnvName}-churn'
          ExecutionRoleArn: !Sub 'arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${EnvName}-model-execution'
          PrimaryContainer: {Image: !Sub '${AWS::AccountId}.dkr.ecr.${AWS::Region}.amazonaws.com/churn:1'}
      Config:
        Type: AWS::SageMaker::EndpointConfig
        Properties:
          EndpointConfigName: !Sub '${EnvName}-churn'
          ProductionVariants:
            - VariantName: main
              ModelName: !GetAtt Model.ModelName
              InitialInstanceCount: 1
              InstanceType: ml.m5.large
      Endpoint:
        Type: AWS::SageMaker::Endpoint
        Properties:
          EndpointName: !Sub '${EnvName}-churn'
          EndpointConfigName: !GetAtt Config.EndpointConfigName
    """
)


def _small_manifest(
    tmp_path: Path, ids: dict, external_id: str = "demo-external-id-0123456789", drop: str | None = None
) -> Path:
    for template in ("permissions-boundary.yaml", "endpoint-invoke-role.yaml"):
        shutil.copy(ROOT / "templates" / template, tmp_path / template)
    (tmp_path / "endpoint.yaml").write_text(ENDPOINT_TEMPLATE)
    manifest = {
        "admin_region": "us-east-1",
        "stack_sets": [
            # The role carries the product's boundary, which must exist first (as in examples/manifest.yaml).
            {
                "name": "demo-permissions-boundary",
                "template": "permissions-boundary.yaml",
                "targets": {"organizational_units": ["ou:/production"]},
                "regions": ["us-east-1"],
                "parameters": {"EnvName": "mlops"},
            },
            {
                "name": "demo-invoke-role",
                "depends_on": ["demo-permissions-boundary"],
                "template": "endpoint-invoke-role.yaml",
                "targets": {"organizational_units": ["ou:/production"]},
                "regions": ["us-east-1"],
                "parameters": {
                    "ConsumerAccountId": ids["ml-development"],
                    "ExternalId": external_id,
                    "EndpointArns": f"arn:aws:sagemaker:us-east-1:{ids['ml-production-1']}:endpoint/mlops-churn",
                },
            },
            {
                "name": "demo-endpoint",
                "template": "endpoint.yaml",
                "targets": {"organizational_units": ["ou:/production"]},
                "regions": ["us-east-1"],
            },
        ],
    }
    if drop:
        del manifest["stack_sets"][1]["parameters"][drop]
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return path


def _seeded_ids(local_aws_server) -> dict:
    # The demo seeds its own server from the same org file and random_seed: the same ids.
    return {name: account["id"] for name, account in local_aws_server.state["accounts"].items()}


def _demo_argv(manifest, state_dir) -> list[str]:
    """The demo on the small manifest, without the catalog, with its own state directory."""
    org = str(ROOT / "examples" / "local-org.yaml")
    return ["--manifest", str(manifest), "--catalog", "", "--org", org, "--state-dir", str(state_dir)]


def test_demo_runs_every_step_and_stops_its_server(local_aws_server, tmp_path, capsys):
    manifest = _small_manifest(tmp_path, _seeded_ids(local_aws_server))
    state_dir = tmp_path / "state"
    code = demo.main(_demo_argv(manifest, state_dir))
    out, err = capsys.readouterr()
    assert code == 0, out + err
    for step in ("local AWS up", "plan", "apply", "status", "cross-account invoke", "local AWS down"):
        assert f"] {step}" in out
    assert '"churn_probability": 0.13' in out  # the queued answer came back through the assumed role
    assert "invoked mlops-churn in account" in err
    assert "demo-external-id-0123456789" not in out + err
    ids = _seeded_ids(local_aws_server)
    assert (
        f"ml-production-1 {ids['ml-production-1']} (OU production)" in out and "SageMaker endpoints: mlops-churn" in out
    )
    assert "nothing is left running" in out
    assert lifecycle.running_server(state_dir) is None and not (state_dir / lifecycle.PID_FILE).exists()


def test_a_failing_step_stops_the_demo_and_its_server(local_aws_server, tmp_path, capsys):
    manifest = _small_manifest(
        tmp_path, _seeded_ids(local_aws_server), drop="ConsumerAccountId"
    )  # a required parameter
    state_dir = tmp_path / "state"
    code = demo.main(_demo_argv(manifest, state_dir))
    out = capsys.readouterr().out
    assert code == 2 and "demo FAILED: demo stopped: step 'plan'" in out
    assert "local AWS down" in out and lifecycle.running_server(state_dir) is None


def test_the_demo_of_the_readme_succeeds(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    code = demo.main(["--state-dir", str(tmp_path / "state")])
    out, err = capsys.readouterr()
    assert code == 0, out[-3000:] + err[-3000:]
    assert "What existed after apply, by account" in out and "invoked " in err
