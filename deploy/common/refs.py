"""One reference grammar for accounts and OUs, and one Organizations resolver, for the
manifest and the catalog alike.

| form | means |
|---|---|
| ``123456789012`` | an account, by id |
| ``account:ml-development`` | an account, by its name in the Organization |
| ``ou-ab12-cd34ef56`` | an OU, by id |
| ``r-ab12`` | the Organization's root, by id |
| ``ou:/`` | the root; ``ou:/workloads/prod``: a nested OU, by the names on its path |

Names and paths are resolved through Organizations before any plan; a reference that
resolves to nothing (or to several accounts) is an input error naming the reference.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass

ACCOUNT_ID_RE = re.compile(r"^\d{12}$")
OU_ID_RE = re.compile(r"^ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}$")
ROOT_ID_RE = re.compile(r"^r-[a-z0-9]{4,32}$")
# ``ou:/`` is the root, ``ou:/workloads/prod`` a nested OU, named as in Organizations.
OU_PATH_RE = re.compile(r"^ou:/([^/]+(/[^/]+)*)?$")
# ``account:ml-development``: an account by its name in the Organization.
ACCOUNT_NAME_RE = re.compile(r"^account:\S.{0,49}$")
ACCOUNT_PREFIX, OU_PATH_PREFIX = "account:", "ou:/"

# JSON Schema patterns of the same grammar, for the files' schemas.
ACCOUNT_REF_PATTERN = r"^(\d{12}|account:\S.{0,49})$"
OU_REF_PATTERN = r"^(ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}|r-[a-z0-9]{4,32}|ou:/([^/]+(/[^/]+)*)?)$"


def is_account_id(value: str) -> bool:
    return ACCOUNT_ID_RE.fullmatch(value) is not None


def is_ou_id(value: str) -> bool:
    return OU_ID_RE.fullmatch(value) is not None


def is_root_id(value: str) -> bool:
    return ROOT_ID_RE.fullmatch(value) is not None


def is_ou_path(value: str) -> bool:
    return OU_PATH_RE.fullmatch(value) is not None


def is_account_name(value: str) -> bool:
    return ACCOUNT_NAME_RE.fullmatch(value) is not None


def needs_lookup(ref: str) -> bool:
    """Whether ``ref`` is a name or path (resolved through Organizations) rather than an id."""
    return is_ou_path(ref) or is_account_name(ref)


def account_active(account: dict) -> bool:
    """Whether an Organizations account record is active (``State``; ``Status`` is retired in
    botocore's model and read only where ``State`` is absent)."""
    state = account.get("State") or account.get("Status") or "ACTIVE"
    return state == "ACTIVE"


class UnresolvedReference(LookupError):
    """A reference that names nothing (or several things) in the Organization."""

    def __init__(self, ref: str, problem: str):
        self.ref, self.problem = ref, problem
        super().__init__(f"'{ref}': {problem}")


@dataclass
class OrganizationsResolver:
    """Resolves references through one Organizations client, caching what it reads.

    Organizations' own errors (no organization, access denied) propagate as botocore
    ``ClientError``; a reference that names nothing raises :class:`UnresolvedReference`.
    """

    org: object

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._children: dict[str, list[dict]] = {}
        self._members: dict[str, frozenset[str]] = {}
        self._by_name: dict[str, list[str]] | None = None
        self._root: str | None = None

    def root(self) -> str:
        if self._root is None:
            self._root = self.org.list_roots()["Roots"][0]["Id"]  # type: ignore[attr-defined]
        return self._root

    def children(self, parent: str) -> list[dict]:
        """The OUs directly under ``parent`` (cached)."""
        with self._lock:
            cached = self._children.get(parent)
        if cached is None:
            paginator = self.org.get_paginator("list_organizational_units_for_parent")  # type: ignore[attr-defined]
            cached = [ou for page in paginator.paginate(ParentId=parent) for ou in page["OrganizationalUnits"]]
            with self._lock:
                self._children[parent] = cached
        return cached

    def ou_id(self, path: str) -> str:
        """The id of the OU (or root) at ``ou:/a/b``."""
        current = self.root()
        for segment in [s for s in path[len(OU_PATH_PREFIX) :].split("/") if s]:
            match = [ou for ou in self.children(current) if ou["Name"] == segment]
            if not match:
                names = ", ".join(sorted(ou["Name"] for ou in self.children(current))) or "none"
                raise UnresolvedReference(path, f"no OU named '{segment}' there (children: {names})")
            current = match[0]["Id"]
        return current

    def accounts_by_name(self) -> dict[str, list[str]]:
        """Active accounts of the Organization by name (read once)."""
        if self._by_name is None:
            by_name: dict[str, list[str]] = {}
            for page in self.org.get_paginator("list_accounts").paginate():  # type: ignore[attr-defined]
                for account in page["Accounts"]:
                    if account_active(account):
                        by_name.setdefault(account["Name"], []).append(account["Id"])
            self._by_name = by_name
        return self._by_name

    def account_id(self, ref: str) -> str:
        """The id of the account named by ``account:NAME``."""
        ids = self.accounts_by_name().get(ref[len(ACCOUNT_PREFIX) :], [])
        if len(ids) != 1:
            problem = (
                "no active account of that name in the Organization"
                if not ids
                else f"{len(ids)} accounts share that name: use the id"
            )
            raise UnresolvedReference(ref, problem)
        return ids[0]

    def resolve(self, refs: Iterable[str]) -> dict[str, str]:
        """``{ref: id}`` for every name or path among ``refs`` (ids are left out: they need no lookup)."""
        resolved = {}
        for ref in sorted(set(refs)):
            if is_ou_path(ref):
                resolved[ref] = self.ou_id(ref)
            elif is_account_name(ref):
                resolved[ref] = self.account_id(ref)
        return resolved

    def active_accounts(self) -> frozenset[str]:
        """Ids of every active account of the Organization."""
        return frozenset(i for ids in self.accounts_by_name().values() for i in ids)

    def management_account(self) -> str | None:
        """The management account's id (read once)."""
        if not hasattr(self, "_management"):
            organization = self.org.describe_organization()["Organization"]  # type: ignore[attr-defined]
            self._management: str | None = organization.get("MasterAccountId")
        return self._management

    def accounts_under(self, parent: str) -> frozenset[str]:
        """Active accounts under an OU or root, nested OUs included (cached)."""
        with self._lock:
            cached = self._members.get(parent)
        if cached is not None:
            return cached
        accounts: set[str] = set()
        stack = [parent]
        paginator = self.org.get_paginator("list_accounts_for_parent")  # type: ignore[attr-defined]
        while stack:
            current = stack.pop()
            for page in paginator.paginate(ParentId=current):
                accounts.update(a["Id"] for a in page["Accounts"] if account_active(a))
            stack.extend(child["Id"] for child in self.children(current))
        members = frozenset(accounts)
        with self._lock:
            self._members[parent] = members
        return members
