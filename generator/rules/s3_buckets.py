"""S3 bucket invariants: customer-managed SSE-KMS, private, versioned, TLS only, VPC only."""

from __future__ import annotations

import fnmatch

from cfnlint.rules import CloudFormationLintRule, RuleMatch

from generator import policy_analysis as analysis
from generator.rules._walk import resource_problems

BUCKET = "AWS::S3::Bucket"
_KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")
_PUBLIC_ACCESS_SETTINGS = ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
# Templates that build an environment (its VPC, its S3 endpoint, its Studio domain):
# their buckets hold training data and models and are reached only from inside the VPC.
ENVIRONMENT_MARKERS = ("AWS::EC2::VPC", "AWS::EC2::VPCEndpoint", "AWS::SageMaker::Domain")
# Object-level actions a VPC-endpoint guard must cover (reading and writing data).
_DATA_ACTIONS = ("s3:getobject", "s3:putobject")


def _buckets(cfn):
    return cfn.get_resources([BUCKET])


def _bucket_policies(cfn, bucket: str) -> list[tuple[str, dict]]:
    """(logical id, resource) of every bucket policy whose ``Bucket`` is this bucket."""
    out = []
    for name, resource in cfn.get_resources(["AWS::S3::BucketPolicy"]).items():
        target = analysis.get_path(resource, "Properties", "Bucket")
        if analysis.symbol(target) == "${" + bucket + "}":
            out.append((name, resource))
    return out


def _canonical(resource: str, bucket: str, bucket_names: set[str]) -> str:
    """Rewrite the spellings of this bucket's ARN to ``arn:${AWS::Partition}:s3:::${Bucket}``."""
    canonical = "arn:${AWS::Partition}:s3:::${" + bucket + "}"
    resource = resource.replace("${" + bucket + ".Arn}", canonical)
    for name in bucket_names:
        if name and name != "${" + bucket + "}":
            resource = resource.replace(name, "${" + bucket + "}")
    for partition in ("aws", "aws-cn", "aws-us-gov"):
        resource = resource.replace(f"arn:{partition}:s3:::", "arn:${AWS::Partition}:s3:::")
    return resource


def _covers(statement, bucket: str, bucket_names: set[str]) -> tuple[bool, bool]:
    """(covers the bucket ARN, covers every object ARN) by the statement's Resource."""
    if statement.not_resource:
        return False, False
    bucket_arn = "arn:${AWS::Partition}:s3:::${" + bucket + "}"
    object_arn = bucket_arn + "/any/key"
    patterns = [_canonical(r, bucket, bucket_names) for r in statement.resources]
    return (
        any(fnmatch.fnmatchcase(bucket_arn, p) for p in patterns),
        any(fnmatch.fnmatchcase(object_arn, p) for p in patterns),
    )


def _names(resource: dict, bucket: str) -> set[str]:
    names = {"${" + bucket + "}"}
    physical = analysis.get_path(resource, "Properties", "BucketName")
    if physical is not None and analysis.symbol(physical) != analysis.UNKNOWN:
        names.add(analysis.symbol(physical))
    return names


def _policy_statements(cfn, bucket: str):
    """(policy logical id, path, statement) for each statement of each variant of the bucket's policies."""
    for name, resource in _bucket_policies(cfn, bucket):
        document = analysis.get_path(resource, "Properties", "PolicyDocument")
        for variant in analysis.variants(document):
            for statement in analysis.statements(variant):
                yield name, ["Resources", name, "Properties", "PolicyDocument"], statement


class BucketEncryptedWithCustomerKey(CloudFormationLintRule):
    """Every bucket encrypts with SSE-KMS under a customer managed key."""

    id = "E9101"
    shortdesc = "S3 bucket encrypted with SSE-KMS and a customer managed key"
    description = (
        "Every AWS::S3::Bucket sets BucketEncryption with SSEAlgorithm aws:kms (or aws:kms:dsse) and a "
        "KMSMasterKeyID that is a customer managed key (not the AWS managed alias/aws/s3): who may "
        "decrypt is then decided by a key policy the account controls. The one exception is a bucket "
        "receiving S3 server access logs (named by another bucket's LoggingConfiguration, or whose "
        "policy lets logging.s3.amazonaws.com write): S3 delivers those logs only to SSE-S3 (AES256) buckets."
    )
    source_url = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html"
    tags = ["security", "s3", "kms"]

    def match(self, cfn):
        log_destinations = _access_log_destinations(cfn)

        def check(name, _rtype, props):
            allowed = _KMS_ALGORITHMS + (("AES256",) if name in log_destinations else ())
            rules = analysis.as_list(analysis.get_path(props, "BucketEncryption", "ServerSideEncryptionConfiguration"))
            if not rules:
                yield (
                    f"Bucket {name} has no BucketEncryption: set SSEAlgorithm "
                    "aws:kms with KMSMasterKeyID of a customer managed key"
                )
            for index, rule in enumerate(rules):
                default = analysis.get_path(rule, "ServerSideEncryptionByDefault") or {}
                algorithms = analysis.possible_values(cfn.template, default.get("SSEAlgorithm", ""))
                key = default.get("KMSMasterKeyID")
                path = ["BucketEncryption", "ServerSideEncryptionConfiguration", index]
                if algorithms == ["AES256"] and "AES256" in allowed:
                    continue  # S3 server access logs can be delivered only to SSE-S3 buckets
                if not all(a in allowed for a in algorithms):
                    yield (
                        path,
                        f"Bucket {name} uses SSEAlgorithm {', '.join(algorithms) or '(none)'}: "
                        "use aws:kms with a customer managed key",
                    )
                elif key is None:
                    yield (
                        path,
                        f"Bucket {name} uses aws:kms without KMSMasterKeyID, i.e. "
                        "the AWS managed key aws/s3: set a customer managed key",
                    )
                elif "alias/aws/" in analysis.symbol(key):
                    yield (
                        path,
                        f"Bucket {name} uses the AWS managed key {analysis.symbol(key)}: set a customer managed key",
                    )

        return resource_problems(cfn, [BUCKET], check)


def _access_log_destinations(cfn) -> set[str]:
    """Buckets that receive S3 server access logs, which S3 delivers only to SSE-S3 (AES256) buckets.

    A bucket is one when another bucket's LoggingConfiguration names it, or when its bucket
    policy allows the log delivery service (logging.s3.amazonaws.com) to write to it.
    """
    buckets = _buckets(cfn)
    out = set()
    for resource in buckets.values():
        for props in analysis.variants(resource.get("Properties") or {}):
            target = analysis.symbol(analysis.get_path(props, "LoggingConfiguration", "DestinationBucketName") or "")
            if target.startswith("${") and target[2:-1] in buckets:
                out.add(target[2:-1])
    for name in buckets:
        for _, _, statement in _policy_statements(cfn, name):
            if statement.allows() and "logging.s3.amazonaws.com" in statement.principals.get("Service", ()):
                out.add(name)
    return out


class BucketBlocksPublicAccess(CloudFormationLintRule):
    """Every bucket sets all four public-access-block settings to true."""

    id = "E9102"
    shortdesc = "S3 bucket blocks all public access"
    description = (
        "Every AWS::S3::Bucket sets PublicAccessBlockConfiguration with BlockPublicAcls, BlockPublicPolicy, "
        "IgnorePublicAcls and RestrictPublicBuckets all true."
    )
    source_url = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/access-control-block-public-access.html"
    tags = ["security", "s3"]

    def match(self, cfn):
        def check(name, _rtype, props):
            block = analysis.get_path(props, "PublicAccessBlockConfiguration") or {}
            missing = [
                s
                for s in _PUBLIC_ACCESS_SETTINGS
                if not analysis.always(cfn.template, block.get(s, "false"), "true", ignore_case=True)
            ]
            if missing:
                yield (
                    f"Bucket {name} does not block public access: set "
                    f"{', '.join(missing)} to true in PublicAccessBlockConfiguration"
                )

        return resource_problems(cfn, [BUCKET], check)


class BucketVersioned(CloudFormationLintRule):
    """Every bucket keeps object versions."""

    id = "E9103"
    shortdesc = "S3 bucket versioning enabled"
    description = (
        "Every AWS::S3::Bucket sets VersioningConfiguration Status Enabled (recovery from overwrite and deletion)."
    )
    source_url = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/Versioning.html"
    tags = ["security", "s3"]

    def match(self, cfn):
        def check(name, _rtype, props):
            status = analysis.get_path(props, "VersioningConfiguration", "Status") or ""
            if not analysis.always(cfn.template, status, "Enabled"):
                yield f"Bucket {name} is not versioned: set VersioningConfiguration Status Enabled"

        return resource_problems(cfn, [BUCKET], check)


class BucketDeniesInsecureTransport(CloudFormationLintRule):
    """Every bucket has a policy denying s3:* to everyone when aws:SecureTransport is false."""

    id = "E9104"
    shortdesc = "S3 bucket policy denies requests without TLS"
    description = (
        "Every AWS::S3::Bucket has an AWS::S3::BucketPolicy with a Deny statement for Principal *, "
        "Action s3:*, on the bucket and all its objects, with Condition Bool aws:SecureTransport false."
    )
    source_url = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/security-best-practices.html"
    tags = ["security", "s3", "tls"]

    def match(self, cfn):
        return _policy_findings(
            cfn,
            _denies_insecure,
            lambda bucket: (
                f"Bucket {bucket} has no AWS::S3::BucketPolicy: add one denying s3:* when aws:SecureTransport is false"
            ),
            lambda policy, bucket: (
                f"Policy {policy} of bucket {bucket} does not deny "
                "insecure transport: add a Deny for Principal *, "
                "Action s3:*, Resource the bucket and <bucket>/*, "
                "Condition Bool aws:SecureTransport false"
            ),
        )


def _policy_findings(cfn, satisfied, no_policy, failing) -> list:
    """A finding for each bucket without a policy (message ``no_policy(bucket)``) and for each
    variant of a bucket's policy none of whose statements is ``satisfied(statement, bucket, names)``
    (message ``failing(policy, bucket)``)."""
    matches = []
    for name, resource in _buckets(cfn).items():
        names = _names(resource, name)
        policies = _bucket_policies(cfn, name)
        if not policies:
            matches.append(RuleMatch(["Resources", name], no_policy(name)))
            continue
        for policy_name, policy in policies:
            document = analysis.get_path(policy, "Properties", "PolicyDocument")
            for variant in analysis.variants(document):
                if not any(satisfied(s, name, names) for s in analysis.statements(variant)):
                    matches.append(
                        RuleMatch(
                            ["Resources", policy_name, "Properties", "PolicyDocument"], failing(policy_name, name)
                        )
                    )
    return analysis.unique_matches(matches)


def _denies_insecure(statement, bucket: str, names: set[str]) -> bool:
    if statement.effect != "Deny" or not statement.everyone() or not statement.grants("s3:*") or statement.not_action:
        return False
    if not all(_covers(statement, bucket, names)):
        return False
    values = statement.condition_values({"bool", "boolifexists"}, "aws:securetransport")
    if not values or any(v.lower() != "false" for v in values):
        return False
    # Any other condition would narrow the deny (every one must hold for it to apply).
    return all(
        op in ("bool", "boolifexists") and set(tests) == {"aws:securetransport"}
        for op, tests in statement.conditions.items()
    )


class EnvironmentBucketDeniesOutsideVpcEndpoint(CloudFormationLintRule):
    """An environment's buckets deny data access that does not come through its VPC endpoint."""

    id = "E9105"
    shortdesc = "Environment S3 bucket denies access not through a VPC endpoint"
    description = (
        "In a template that builds an environment (it declares a VPC, a VPC endpoint or a SageMaker domain), "
        "every AWS::S3::Bucket's policy has a Deny for Principal * covering s3:GetObject and s3:PutObject on "
        "all objects, conditioned on StringNotEquals aws:SourceVpce (or aws:SourceVpc). Principals that "
        "reach the bucket from their own account's endpoint may be exempted with an ArnNotLike/ArnNotEquals "
        "aws:PrincipalArn condition."
    )
    source_url = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/example-bucket-policies-vpc-endpoint.html"
    tags = ["security", "s3", "network"]

    def match(self, cfn):
        if not cfn.get_resources(list(ENVIRONMENT_MARKERS)):
            return []
        return _policy_findings(
            cfn,
            _denies_outside_vpc,
            lambda bucket: (
                f"Environment bucket {bucket} has no bucket policy: add one "
                "denying access not through the VPC endpoint (aws:SourceVpce)"
            ),
            lambda policy, bucket: (
                f"Policy {policy} of environment bucket {bucket} does "
                "not deny access outside the VPC endpoint: add a Deny "
                "for Principal * on <bucket>/* covering s3:GetObject and "
                "s3:PutObject with Condition StringNotEquals aws:SourceVpce"
            ),
        )


_VPC_GUARD_OPERATORS = {"stringnotequals", "stringnotequalsifexists", "forallvalues:stringnotequals"}
_EXEMPTION_OPERATORS = {
    "arnnotlike",
    "arnnotequals",
    "stringnotlike",
    "stringnotequals",
    "stringnotequalsifexists",
    "arnnotlikeifexists",
}


def _denies_outside_vpc(statement, bucket: str, names: set[str]) -> bool:
    if statement.effect != "Deny" or not statement.everyone() or statement.not_action:
        return False
    if not all(statement.grants(a) for a in _DATA_ACTIONS):
        return False
    if not _covers(statement, bucket, names)[1]:
        return False
    guards = statement.condition_values(_VPC_GUARD_OPERATORS, "aws:sourcevpce") + statement.condition_values(
        _VPC_GUARD_OPERATORS, "aws:sourcevpc"
    )
    if not guards or any(g in ("*", "") for g in guards):
        return False
    # Other conditions may only exempt named principals; anything else would narrow the deny.
    for operator, tests in statement.conditions.items():
        for key in tests:
            if key in ("aws:sourcevpce", "aws:sourcevpc") and operator in _VPC_GUARD_OPERATORS:
                continue
            if (
                key in ("aws:principalarn", "aws:principalaccount", "aws:principalservicename")
                and operator in _EXEMPTION_OPERATORS
            ):
                if any("*" == v for v in tests[key]):
                    return False
                continue
            return False
    return True
