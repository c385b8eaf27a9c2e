"""The Service Catalog catalog file: its schema, loading, and the desired catalog.

``load_catalog`` reads and validates a catalog file (JSON Schema first, then the checks a
schema cannot express: unique names, template files that exist and parse, no share with the
root), hashing each template's bytes, and returns a frozen :class:`Catalog` of
:class:`ProductSpec`, :class:`PrincipalSpec` and :class:`Shares`. Share targets are kept in
the grammar of :mod:`deploy.common.refs`; the older bare forms are rewritten on loading and
noted in ``Catalog.deprecations``. :mod:`deploy.catalog.plan` compares the result with the
live state. Nothing here talks to AWS.

Versions are content-addressed: a template's S3 key is its sha256 and the version
(provisioning artifact) name ends with a short prefix of it, so republishing unchanged
bytes finds the existing version and plans nothing.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from deploy.common import refs
from deploy.common.config import Locator, check_schema, load_yaml_file, parse_yaml, read_text_file, yaml_problem
from deploy.common.errors import InputError
from deploy.common.ownership import OWNER_TAG_KEY, OWNER_TAG_VALUE

STUDIO_VISIBILITY_TAG = "sagemaker:studio-visibility"
SHORT_HASH_LENGTH = 12
TEMPLATE_MAX_BYTES = 1_000_000  # CloudFormation's limit for a template read from S3
DEFAULT_KEY_PREFIX = "servicecatalog/templates/"
DEFAULT_KEEP_ACTIVE = 3

_ROLE_NAME = r"^[\w+=,.@-]{1,64}$"
_ROLE_PATH_NAME = r"^(/[\w+=,.@-]+)*/?[\w+=,.@-]{1,64}$"
_ROLE_ARN = r"^arn:aws[a-z-]*:iam::\d{12}:role/([\w+=,.@-]+/)*[\w+=,.@-]{1,64}$"
_PRINCIPAL_ARN = r"^arn:aws[a-z-]*:iam::\d{12}:(role|user|group)/([\w+=,.@-]+/)*[\w+=,.@-]{1,128}$"
_ROLE_PATTERN = r"^[\w+=,.@*?/-]{1,128}$"
# Shares name accounts and OUs in the grammar of deploy.common.refs (by id, or by name /
# path in the Organization, resolved before planning), so one catalog fits the local and a
# real org. The forms before it, a bare account name and a bare OU path, are still read:
# they are rewritten to ``account:NAME`` / ``ou:/PATH`` on loading, with a deprecation note.
_DEPRECATED_ACCOUNT_NAME = r"^[A-Za-z][\w .+@-]{0,49}$"
_DEPRECATED_OU_PATH = r"^(/[\w .+@&-]{1,128})+$"
_REGION = r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$"
_BUCKET = r"^(?!xn--)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
_TAG_KEY = r"^(?!aws:)[\w .:/=+@-]{1,128}$"
_VERSION_LABEL = r"^[A-Za-z0-9][A-Za-z0-9._]{0,39}$"
# AssociatePrincipalWithPortfolio: "You can associate a maximum of 10 Principals with a
# portfolio using PrincipalType as IAM_PATTERN."
MAX_ROLE_PATTERNS = 10
SHORT_HASH_RE = re.compile(rf"(?:^|[-_.+])([0-9a-f]{{{SHORT_HASH_LENGTH}}})$")


def _text(max_length: int, min_length: int = 1) -> dict:
    return {"type": "string", "minLength": min_length, "maxLength": max_length}


def _pattern(pattern: str, description: str) -> dict:
    return {"type": "string", "pattern": pattern, "description": description}


_TAGS = {
    "type": "object",
    # Service Catalog takes 20 tags a resource; the tool adds its ownership and Studio tags.
    "maxProperties": 18,
    "propertyNames": _pattern(_TAG_KEY, "a tag key of 1-128 characters not starting with 'aws:'"),
    "additionalProperties": _text(256, 0),
    "description": "a mapping of tag key to string value (at most 18)",
}
_LAUNCH_ROLE = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "maxProperties": 1,
    "description": "exactly one of 'name' (a role name resolved in each launching account) or 'arn'",
    "properties": {
        "name": _pattern(_ROLE_NAME, "an IAM role name such as SageMakerProductsLaunchRole"),
        "arn": _pattern(_ROLE_ARN, "an IAM role ARN arn:<partition>:iam::<12-digit account>:role/<name>"),
    },
}
_VERSIONS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "keep_active": {
            "type": "integer",
            "minimum": 1,
            "maximum": 100,
            "description": "how many newest versions stay active (1-100)",
        },
        "keep": {
            "type": "integer",
            "minimum": 1,
            "description": "how many newest versions to keep at all; older unused ones are deleted",
        },
    },
}
_PRINCIPAL = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "maxProperties": 1,
    "description": "exactly one of 'arn' (a role, user or group ARN), 'role' (a role name of the publishing "
    "account) or 'role_pattern' (a role name with wildcards, matched in every account the portfolio is shared with)",
    "properties": {
        "arn": _pattern(_PRINCIPAL_ARN, "an IAM role, user or group ARN"),
        "role": _pattern(_ROLE_PATH_NAME, "an IAM role name (optionally with a path), of the publishing account"),
        "role_pattern": _pattern(_ROLE_PATTERN, "a role name with * or ? wildcards"),
    },
}
_PRODUCT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "template", "owner"],
    "properties": {
        "name": _text(8191),
        "template": _text(4096),
        "owner": _text(8191),
        "description": _text(8191, 0),
        "distributor": _text(8191, 0),
        "support_description": _text(8191, 0),
        "support_email": {
            "type": "string",
            "maxLength": 254,
            "pattern": r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
            "description": "an e-mail address",
        },
        "support_url": {
            "type": "string",
            "maxLength": 2083,
            "pattern": r"^https?://\S+$",
            "description": "an http(s) URL",
        },
        "tags": _TAGS,
        "sagemaker_project": {
            "type": "boolean",
            "description": "true for SageMaker project templates (tagged for Studio)",
        },
        "version_label": _pattern(_VERSION_LABEL, "a short label such as 1.2 (letters, digits, '.', '_'; at most 40)"),
        "launch_role": _LAUNCH_ROLE,
        "versions": _VERSIONS,
    },
}

SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Service Catalog catalog file of python -m deploy publish",
    "type": "object",
    "additionalProperties": False,
    "required": ["portfolio", "products"],
    "properties": {
        "version": {"const": 1, "description": "the catalog format version, 1"},
        "region": _pattern(_REGION, "an AWS region name such as us-east-1"),
        "bucket": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "name": _pattern(_BUCKET, "an S3 bucket name (3-63 lowercase letters, digits, '.', '-')"),
                "key_prefix": {
                    "type": "string",
                    "maxLength": 200,
                    "pattern": r"^([\w.=-]+/)*$",
                    "description": "a key prefix ending with '/', or empty",
                },
                "kms_key_id": _text(2048),
            },
        },
        "portfolio": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "provider"],
            "properties": {
                "name": _text(100),
                "provider": _text(50),
                "description": _text(2000, 0),
                "tags": _TAGS,
            },
        },
        "launch_role": _LAUNCH_ROLE,
        "principals": {"type": "array", "items": _PRINCIPAL},
        "versions": _VERSIONS,
        "products": {"type": "array", "minItems": 1, "items": _PRODUCT},
        "shares": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "accounts": {
                    "type": "array",
                    "uniqueItems": True,
                    "items": _pattern(
                        f"{refs.ACCOUNT_REF_PATTERN}|{_DEPRECATED_ACCOUNT_NAME}",
                        "a 12-digit account id (quoted in YAML) or account:NAME, "
                        "an account of the Organization by name",
                    ),
                },
                "organizational_units": {
                    "type": "array",
                    "uniqueItems": True,
                    "items": _pattern(
                        f"{refs.OU_REF_PATTERN}|{_DEPRECATED_OU_PATH}",
                        "an OU id such as ou-ab12-cd34ef56, or an OU by its path from the root such as "
                        "ou:/workloads/staging",
                    ),
                },
                "member_accounts": {
                    "type": "array",
                    "uniqueItems": True,
                    "items": _pattern(
                        refs.ACCOUNT_REF_PATTERN,
                        "an account of the caller's Organization: a 12-digit id (quoted in YAML) or account:NAME",
                    ),
                    "description": "accounts of the Organization shared as organization nodes: imported "
                    "automatically, principals shared with share_principals, no acceptance role needed",
                },
                "organization": {"type": "boolean", "description": "share with the whole organization"},
                "share_principals": {"type": "boolean"},
                "share_tag_options": {"type": "boolean"},
                "accept_role": _pattern(
                    _ROLE_NAME, "the name of a role the tool may assume in each recipient account to accept the share"
                ),
            },
        },
    },
}


# --- the desired catalog ---------------------------------------------------------------


@dataclass(frozen=True)
class LaunchRole:
    """A launch constraint's role: by name (``LocalRoleName``) or by ARN (``RoleArn``)."""

    name: str | None = None
    arn: str | None = None

    def parameters(self) -> dict[str, str]:
        if self.name:
            return {"LocalRoleName": self.name}
        assert self.arn, "the schema requires exactly one of name and arn"
        return {"RoleArn": self.arn}


@dataclass(frozen=True)
class VersionPolicy:
    keep_active: int = DEFAULT_KEEP_ACTIVE
    keep: int | None = None  # None: never delete


class StrEnum(str, Enum):
    """A closed set of strings that compare, hash and format as their values."""

    def __str__(self) -> str:
        return str(self.value)


class PrincipalKind(StrEnum):
    """How the catalog names a principal (the key of a ``principals`` entry)."""

    ARN = "arn"
    ROLE = "role"
    ROLE_PATTERN = "role_pattern"


class PrincipalType(StrEnum):
    """Service Catalog's PrincipalType."""

    IAM = "IAM"
    IAM_PATTERN = "IAM_PATTERN"


@dataclass(frozen=True)
class PrincipalSpec:
    kind: PrincipalKind
    value: str

    def resolve(self, partition: str, account: str) -> tuple[str, PrincipalType]:
        """(PrincipalARN, PrincipalType) for the publishing account."""
        if self.kind == PrincipalKind.ARN:
            return self.value, PrincipalType.IAM
        if self.kind == PrincipalKind.ROLE:
            return f"arn:{partition}:iam::{account}:role/{self.value.lstrip('/')}", PrincipalType.IAM
        # IAM_PATTERN principals carry no account: they match in every recipient account.
        return f"arn:{partition}:iam:::role/{self.value.lstrip('/')}", PrincipalType.IAM_PATTERN


@dataclass(frozen=True)
class ProductSpec:
    name: str
    template: str  # as written in the catalog
    path: Path
    body: bytes = field(repr=False)
    sha256: str
    owner: str
    description: str = ""
    distributor: str = ""
    support_description: str = ""
    support_email: str = ""
    support_url: str = ""
    tags: tuple[tuple[str, str], ...] = ()
    sagemaker_project: bool = False
    version_label: str | None = None
    launch_role: LaunchRole | None = None
    versions: VersionPolicy = VersionPolicy()

    @property
    def short_hash(self) -> str:
        return self.sha256[:SHORT_HASH_LENGTH]

    @property
    def version_name(self) -> str:
        return f"{self.version_label}-{self.short_hash}" if self.version_label else self.short_hash

    @property
    def version_description(self) -> str:
        return f"sha256:{self.sha256} of {self.template}"

    def desired_tags(self) -> dict[str, str]:
        tags = dict(self.tags)
        tags[OWNER_TAG_KEY] = OWNER_TAG_VALUE
        if self.sagemaker_project:
            tags[STUDIO_VISIBILITY_TAG] = "true"
        return tags

    def fields(self) -> dict[str, str]:
        """The product's own attributes, in Service Catalog's ``UpdateProduct`` names."""
        return {
            "Owner": self.owner,
            "Description": self.description,
            "Distributor": self.distributor,
            "SupportDescription": self.support_description,
            "SupportEmail": self.support_email,
            "SupportUrl": self.support_url,
        }


@dataclass(frozen=True)
class Shares:
    accounts: tuple[str, ...] = ()
    organizational_units: tuple[str, ...] = ()
    member_accounts: tuple[str, ...] = ()  # accounts of the Organization, shared as organization nodes
    organization: bool = False
    share_principals: bool = False
    share_tag_options: bool = False
    accept_role: str | None = None

    @property
    def needs_organizations(self) -> bool:
        return bool(self.organizational_units) or self.organization or bool(self.member_accounts)


@dataclass(frozen=True)
class Catalog:
    source: str
    portfolio_name: str
    provider: str
    products: tuple[ProductSpec, ...]
    portfolio_description: str = ""
    portfolio_tags: tuple[tuple[str, str], ...] = ()
    region: str | None = None
    bucket_name: str | None = None
    key_prefix: str = DEFAULT_KEY_PREFIX
    kms_key_id: str | None = None
    principals: tuple[PrincipalSpec, ...] = ()
    shares: Shares = Shares()
    deprecations: tuple[str, ...] = ()  # notes for the reader: forms still read, to be rewritten

    def desired_portfolio_tags(self) -> dict[str, str]:
        return {**dict(self.portfolio_tags), OWNER_TAG_KEY: OWNER_TAG_VALUE}

    def s3_key(self, product: ProductSpec) -> str:
        """Content-addressed key: identical bytes always land on the same key."""
        return f"{self.key_prefix}{product.sha256}.yaml"


# --- loading and validation --------------------------------------------------------------


_LOCATOR = Locator(items="products", label="product", section_as_where=True)


def validate_document(document: Any, source: str) -> None:
    """Raise InputError naming file, item and key for the first schema violation (all are counted)."""
    check_schema(document, jsonschema.Draft202012Validator(SCHEMA), source, _LOCATOR)


def _read_template(source: str, where: str, template: str, root: Path) -> tuple[Path, bytes]:
    path = Path(template)
    if not path.is_absolute():
        path = root / path
    if not path.is_file():
        raise InputError(
            f"template file {str(path)!r} not found (paths are relative to {str(root)!r}, the repository root)",
            source=source,
            where=where,
            key="template",
        )
    try:  # the size is checked before reading; binary and non-UTF-8 files are refused
        text = read_text_file(path, "template", TEMPLATE_MAX_BYTES)
    except InputError as error:
        raise InputError(
            f"template {str(path)!r}: {error.message}", source=source, where=where, key="template"
        ) from None
    body = text.encode("utf-8")
    try:
        parsed = parse_yaml(text)  # JSON is YAML too
    except yaml.YAMLError as error:
        at, problem = yaml_problem(error)  # never quotes the file: it may not be a template at all
        raise InputError(
            f"template {str(path)!r} is not valid YAML/JSON{f' ({at})' if at else ''}: {problem}",
            source=source,
            where=where,
            key="template",
        ) from None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("Resources"), dict):
        raise InputError(
            f"template {str(path)!r} is not a CloudFormation template (no 'Resources' mapping)",
            source=source,
            where=where,
            key="template",
        )
    return path, body


def _launch_role(data: dict | None) -> LaunchRole | None:
    return LaunchRole(name=data.get("name"), arn=data.get("arn")) if data else None


def _versions(data: dict | None, default: VersionPolicy, source: str, where: str, key: str) -> VersionPolicy:
    if not data:
        return default
    policy = VersionPolicy(
        keep_active=data.get("keep_active", default.keep_active), keep=data.get("keep", default.keep)
    )
    if policy.keep is not None and policy.keep < policy.keep_active:
        raise InputError(
            f"keep ({policy.keep}) must be at least keep_active ({policy.keep_active}): active versions are kept",
            source=source,
            where=where,
            key=f"{key}.keep",
        )
    return policy


def _share_references(
    values: list[str], key: str, source: str, deprecated: str, prefix: str, notes: list[str]
) -> tuple[str, ...]:
    """The references of ``shares.<key>`` in the grammar of :mod:`deploy.common.refs`: the
    deprecated bare forms (``deprecated``) get ``prefix``, with a note in ``notes``."""
    out = []
    for index, value in enumerate(values):
        if re.fullmatch(deprecated, value):
            notes.append(f"{source}: shares.{key}[{index}]: {value!r} is deprecated, write '{prefix}{value}'")
            value = f"{prefix}{value}"
        if key == "organizational_units" and (refs.is_root_id(value) or value == refs.OU_PATH_PREFIX):
            raise InputError(
                f"{value!r} is the root, the whole Organization: set 'organization: true' instead",
                source=source,
                where="shares",
                key=f"shares.{key}[{index}]",
            )
        out.append(value)
    return tuple(out)


def parse_catalog(document: Any, source: str, root: Path) -> Catalog:
    """Validate a parsed catalog document and read its templates; raise InputError on bad input."""
    validate_document(document, source)
    default_versions = _versions(document.get("versions"), VersionPolicy(), source, "versions", "versions")
    default_role = _launch_role(document.get("launch_role"))
    products: list[ProductSpec] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(document["products"]):
        where = f"product '{item['name']}'"
        if item["name"] in seen:
            raise InputError(
                f"duplicate product name (also products[{seen[item['name']]}]); product names must be unique",
                source=source,
                where=where,
                key=f"products[{index}].name",
            )
        seen[item["name"]] = index
        path, body = _read_template(source, where, item["template"], root)
        products.append(
            ProductSpec(
                name=item["name"],
                template=item["template"],
                path=path,
                body=body,
                sha256=hashlib.sha256(body).hexdigest(),
                owner=item["owner"],
                description=item.get("description", ""),
                distributor=item.get("distributor", ""),
                support_description=item.get("support_description", ""),
                support_email=item.get("support_email", ""),
                support_url=item.get("support_url", ""),
                tags=tuple(sorted(item.get("tags", {}).items())),
                sagemaker_project=item.get("sagemaker_project", False),
                version_label=item.get("version_label"),
                launch_role=_launch_role(item.get("launch_role")) or default_role,
                versions=_versions(
                    item.get("versions"), default_versions, source, where, f"products[{index}].versions"
                ),
            )
        )
    principals, seen_principals = [], set()
    for index, item in enumerate(document.get("principals", [])):
        ((kind, value),) = item.items()
        if (kind, value) in seen_principals:
            raise InputError(
                f"duplicate principal {value!r}", source=source, where="principals", key=f"principals[{index}].{kind}"
            )
        seen_principals.add((kind, value))
        principals.append(PrincipalSpec(PrincipalKind(kind), value))
        patterns = sum(1 for p in principals if p.kind == PrincipalKind.ROLE_PATTERN)
        if kind == PrincipalKind.ROLE_PATTERN and patterns > MAX_ROLE_PATTERNS:
            raise InputError(
                f"more than {MAX_ROLE_PATTERNS} role_pattern principals: Service Catalog associates at most "
                f"{MAX_ROLE_PATTERNS} IAM_PATTERN principals with a portfolio; merge patterns or use 'role'/'arn'",
                source=source,
                where="principals",
                key=f"principals[{index}].role_pattern",
            )
    shares_doc = document.get("shares", {})
    notes: list[str] = []
    shares = Shares(
        accounts=_share_references(
            shares_doc.get("accounts", []), "accounts", source, _DEPRECATED_ACCOUNT_NAME, refs.ACCOUNT_PREFIX, notes
        ),
        organizational_units=_share_references(
            shares_doc.get("organizational_units", []),
            "organizational_units",
            source,
            _DEPRECATED_OU_PATH,
            "ou:",
            notes,
        ),
        member_accounts=tuple(shares_doc.get("member_accounts", [])),
        organization=shares_doc.get("organization", False),
        share_principals=shares_doc.get("share_principals", False),
        share_tag_options=shares_doc.get("share_tag_options", False),
        accept_role=shares_doc.get("accept_role"),
    )
    if shares.accept_role and not shares.accounts:
        raise InputError(
            "accept_role is only used for account shares; list 'accounts' or drop it "
            "(organization shares need no acceptance)",
            source=source,
            where="shares",
            key="shares.accept_role",
        )
    bucket = document.get("bucket", {})
    portfolio = document["portfolio"]
    return Catalog(
        source=source,
        portfolio_name=portfolio["name"],
        provider=portfolio["provider"],
        portfolio_description=portfolio.get("description", ""),
        portfolio_tags=tuple(sorted(portfolio.get("tags", {}).items())),
        products=tuple(products),
        region=document.get("region"),
        bucket_name=bucket.get("name"),
        key_prefix=bucket.get("key_prefix", DEFAULT_KEY_PREFIX),
        kms_key_id=bucket.get("kms_key_id"),
        principals=tuple(principals),
        shares=shares,
        deprecations=tuple(notes),
    )


def load_catalog(path: str | Path, root: str | Path | None = None) -> Catalog:
    """Read, validate and hash the catalog file at ``path``; template paths resolve against ``root`` (default: cwd)."""
    document = load_yaml_file(path, "catalog")
    if not isinstance(document, dict):
        raise InputError("expected a mapping with 'portfolio' and 'products' at the top level", source=str(path))
    return parse_catalog(document, str(path), Path(root) if root else Path.cwd())
