"""Customer managed KMS keys: the one builder of every key in every template.

Every key is symmetric, rotates yearly, is retained on stack deletion and replacement (the
data encrypted under it is retained too) and has a policy that starts with the same
statement: this account administers the key through IAM (:func:`account_administers_key`),
with every key-level action enumerated. Templates add their own statements after it
(:func:`key_policy`): the environment keys in ``generator.encryption``, the flow-log key
in ``generator.network``, the endpoint and pipeline-artifact keys of the deploy side.
"""

from __future__ import annotations

from awacs import kms
from awacs.aws import Allow, Policy, Principal, Statement
from troposphere import Ref, Sub, Tags, Template
from troposphere.kms import Alias, Key

from generator.parameters import account_root_arn
from generator.policies import VERSION

# What the account (through IAM policies) may do with a key: every administrative and
# cryptographic operation a key holder needs, enumerated rather than ``kms:*`` so that a
# linter can see it. PutKeyPolicy keeps the key administrable (no lock-out);
# CreateKey/ListKeys/custom key stores are account-level, not key-level, and absent.
KEY_ACCOUNT_ACTIONS = (
    kms.CancelKeyDeletion,
    kms.CreateAlias,
    kms.CreateGrant,
    kms.Decrypt,
    kms.DeleteAlias,
    kms.DescribeKey,
    kms.DisableKey,
    kms.DisableKeyRotation,
    kms.EnableKey,
    kms.EnableKeyRotation,
    kms.Encrypt,
    kms.GenerateDataKey,
    kms.GenerateDataKeyWithoutPlaintext,
    kms.GetKeyPolicy,
    kms.GetKeyRotationStatus,
    kms.ListAliases,
    kms.ListGrants,
    kms.ListKeyPolicies,
    kms.ListKeyRotations,
    kms.ListResourceTags,
    kms.PutKeyPolicy,
    kms.ReEncryptFrom,
    kms.ReEncryptTo,
    kms.RetireGrant,
    kms.RevokeGrant,
    kms.RotateKeyOnDemand,
    kms.ScheduleKeyDeletion,
    kms.TagResource,
    kms.UntagResource,
    kms.UpdateAlias,
    kms.UpdateKeyDescription,
)

# What a principal that writes and reads data under the key needs.
KEY_DATA_ACTIONS = (kms.Decrypt, kms.DescribeKey, kms.Encrypt, kms.GenerateDataKey, kms.ReEncryptFrom, kms.ReEncryptTo)


def account_administers_key() -> Statement:
    """The first statement of every key policy: IAM policies of this account decide who administers the key."""
    return Statement(
        Sid="AccountAdministersKeyThroughIam",
        Effect=Allow,
        Principal=Principal("AWS", [account_root_arn("${AWS::AccountId}")]),
        Action=list(KEY_ACCOUNT_ACTIONS),
        Resource=["*"],
    )


def key_policy(*statements: Statement) -> Policy:
    """A key policy: this account administers the key through IAM, plus ``statements``."""
    return Policy(Version=VERSION, Statement=[account_administers_key(), *statements])


def add_key(
    template: Template,
    title: str,
    description: object,
    tags: Tags,
    policy: object = None,
    condition: str | None = None,
    alias: object = None,
    pending_window_days: int | None = None,
) -> Key:
    """A symmetric customer managed key with yearly rotation, retained on stack deletion.

    ``policy`` defaults to ``key_policy()``; pass ``key_policy(*statements)`` (or an ``If``
    choosing between two) to admit more principals. ``alias`` (a name or a ``Sub``) adds an
    ``AWS::KMS::Alias`` named ``<title>Alias``.
    """
    key = Key(
        title,
        Description=description,
        EnableKeyRotation=True,
        KeyPolicy=policy if policy is not None else key_policy(),
        Tags=tags,
        DeletionPolicy="Retain",
        UpdateReplacePolicy="Retain",
    )
    if pending_window_days is not None:
        key.PendingWindowInDays = pending_window_days
    if condition:
        key.Condition = condition
    template.add_resource(key)
    if alias is not None:
        template.add_resource(Alias(f"{title}Alias", AliasName=alias, TargetKeyId=Ref(key)))
    return key


def environment_key_alias(name: str) -> Sub:
    """``alias/<env-name>-<env-type>-<name>``: the alias of a key of an environment's network or data."""
    return Sub("alias/${EnvName}-${EnvType}-" + name)
