"""KMS: the AWS managed keys (``alias/aws/s3`` and the other ``alias/aws/*``) are AWS managed.

moto 5.2.5 creates the key behind a reserved alias on first use as an ordinary customer
managed key (``KeyManager: CUSTOMER``) whose policy anybody in the account may replace.
The KMS Developer Guide ("Change a key policy"): "You can view the key policy for an AWS
managed key or a customer managed key, but you can only change the key policy for a
customer managed key. The policies of AWS managed keys are created and managed by the AWS
service that created the KMS key in your account." So here such a key says
``KeyManager: AWS`` (DescribeKey), and PutKeyPolicy and CreateGrant on it are refused with
AccessDeniedException. The error code and text are ours: AWS documents the rule, not the
error (its managed key policies simply allow neither action to the account); refusing is
the stricter choice.
"""

from __future__ import annotations

import json

from moto.kms import models, responses
from moto.kms.exceptions import AccessDeniedException

_original_generate = models.KmsBackend._generate_default_keys
_original_put_key_policy = responses.KmsResponse.put_key_policy
_original_create_grant = responses.KmsResponse.create_grant


def _generate_default_keys(self, alias_name: str):
    key_id = _original_generate(self, alias_name)
    if key_id is not None:
        self.keys[key_id].key_manager = "AWS"
    return key_id


def _refuse_aws_managed(response, action: str) -> None:
    key_id = response._get_param("KeyId")
    backend = response.kms_backend
    try:
        key = backend.describe_key(key_id)
    except Exception:  # unknown key: moto's own handler answers NotFoundException
        return
    if key.key_manager == "AWS":
        message = (
            f"{key.arn} is an AWS managed key: its key policy is managed by the AWS service that created it; "
            f"kms:{action} is not allowed"
        )
        error = AccessDeniedException(message)
        error.description = json.dumps({"__type": "AccessDeniedException", "message": message})  # moto drops it
        raise error


def _put_key_policy(self) -> str:
    _refuse_aws_managed(self, "PutKeyPolicy")
    return _original_put_key_policy(self)


def _create_grant(self) -> str:
    _refuse_aws_managed(self, "CreateGrant")
    return _original_create_grant(self)


def apply() -> None:
    """Mark the keys of reserved aliases AWS managed and refuse changing their access (idempotent)."""
    models.KmsBackend._generate_default_keys = _generate_default_keys
    responses.KmsResponse.put_key_policy = _put_key_policy
    responses.KmsResponse.create_grant = _create_grant
