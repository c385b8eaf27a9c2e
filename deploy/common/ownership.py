"""The one ownership tag of this tool, on stack sets, portfolios and products alike.

A deployer never deletes what it does not own: the StackSet deployer and the Service
Catalog publisher both mark what they create with ``OWNER_TAG_KEY=OWNER_TAG_VALUE`` and act
on removals only where they find it. Keys under ``TOOL_TAG_PREFIX`` are reserved for the tool.
"""

from __future__ import annotations

from collections.abc import Mapping

TOOL_TAG_PREFIX = "sagemaker-stackset-deploy:"
OWNER_TAG_KEY = f"{TOOL_TAG_PREFIX}managed-by"
OWNER_TAG_VALUE = "sagemaker-stackset-deploy"
# The publisher's key before the two halves shared one; still read as ownership, replaced on
# the next publish, so products published by an older release are not orphaned.
LEGACY_OWNER_TAG_KEYS = ("sm-deploy:managed-by",)


def owned(tags: Mapping[str, str]) -> bool:
    """Whether ``tags`` carry this tool's ownership mark (the current key or a legacy one)."""
    return any(tags.get(key) == OWNER_TAG_VALUE for key in (OWNER_TAG_KEY, *LEGACY_OWNER_TAG_KEYS))
