"""CloudFormation: tagged KMS keys and SSM parameters are created, tagged.

moto 5.2.5 hands CloudFormation ``Tags`` to these services' backends in the wrong shape:
a key's ``[{Key, Value}]`` list reaches a tagger expecting the KMS API's
``[{TagKey, TagValue}]`` (``KeyError: 'TagKey'``), and an SSM parameter's ``{key: value}``
map (the shape ``AWS::SSM::Parameter`` documents) reaches code expecting a list
(``TypeError``). Either fails the resource, and every ``Ref``/``Fn::GetAtt`` to it fails the
stack. AWS creates and tags both. Here the tags are translated to the expected shape.
"""

from __future__ import annotations

import copy

from moto.kms import models as kms_models
from moto.ssm import models as ssm_models


def _kms_tags(tags):
    return [{"TagKey": t["Key"], "TagValue": t["Value"]} if "Key" in t else t for t in tags]


def _ssm_tags(tags):
    return [{"Key": key, "Value": value} for key, value in tags.items()] if isinstance(tags, dict) else tags


def _translating(model, translate):
    original = model.create_from_cloudformation_json.__func__

    def create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        properties = (cloudformation_json or {}).get("Properties") or {}
        if properties.get("Tags"):
            cloudformation_json = copy.deepcopy(cloudformation_json)
            cloudformation_json["Properties"]["Tags"] = translate(properties["Tags"])
        return original(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)

    create.translates_tags = True
    return classmethod(create)


def apply() -> None:
    """Translate the tags of KMS keys and SSM parameters created by CloudFormation (idempotent)."""
    for model, translate in ((kms_models.Key, _kms_tags), (ssm_models.Parameter, _ssm_tags)):
        if not getattr(model.create_from_cloudformation_json.__func__, "translates_tags", False):
            model.create_from_cloudformation_json = _translating(model, translate)
