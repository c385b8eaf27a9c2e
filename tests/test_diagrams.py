"""The Mermaid page per template: every resource a node, every reference an edge."""

from __future__ import annotations

import re

import pytest

from generator.diagrams import edges, render_diagram
from generator.registry import TEMPLATES

TEMPLATE = {
    "Description": "demo",
    "Parameters": {
        "Name": {"Type": "String", "Default": "", "Description": "a | name"},
        "Secret": {"Type": "String", "NoEcho": True, "Default": "s3cret"},
    },
    "Conditions": {"On": {"Fn::Equals": [{"Ref": "Name"}, "x"]}},
    "Resources": {
        "Key": {"Type": "AWS::KMS::Key"},
        "Bucket": {"Type": "AWS::S3::Bucket", "Condition": "On", "Properties": {"KmsKeyId": {"Fn::GetAtt": "Key.Arn"}}},
        "Policy": {
            "Type": "AWS::S3::BucketPolicy",
            "DependsOn": "Key",
            "Properties": {
                "Bucket": {"Ref": "Bucket"},
                "Doc": {"Fn::Sub": ["${Bucket.Arn}/${X}", {"X": {"Ref": "Name"}}]},
            },
        },
    },
    "Outputs": {"BucketName": {"Value": {"Ref": "Bucket"}, "Export": {"Name": "b"}, "Condition": "On"}},
}


def test_edges_cover_ref_getatt_sub_and_depends_on_between_resources_only():
    assert edges(TEMPLATE) == [
        ("Bucket", "Key", "GetAtt"),
        ("Policy", "Bucket", "Ref, Sub"),
        ("Policy", "Key", "DependsOn"),
    ]


def test_the_page_lists_nodes_parameters_and_outputs_without_secrets():
    page = render_diagram("demo", TEMPLATE)
    assert '  Bucket["Bucket<br/><small>AWS::S3::Bucket</small><br/>if On"]' in page
    assert "  Policy -->|Ref, Sub| Bucket" in page
    assert "s3cret" not in page and "(NoEcho)" in page
    assert "| `Name` | String | (empty) | a \\| name |" in page
    assert "| `BucketName` | yes |  (if On) |" in page


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_every_template_has_a_node_per_resource_and_an_edge_per_reference(name):
    template = TEMPLATES[name]().to_dict()
    page = render_diagram(name, template)
    nodes = set(re.findall(r"^  (\w+)\[", page, re.M))
    assert nodes == set(template["Resources"])
    for source, target, _ in edges(template):
        assert source in nodes and target in nodes
