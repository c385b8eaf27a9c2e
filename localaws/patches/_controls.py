"""What the patches' control endpoints (``/_local/control/<patch>``) share."""

from __future__ import annotations


def set_counts(values: dict, keys, settings: dict) -> None:
    """Copy the counts among ``keys`` of a control request into ``settings`` (whole numbers >= 0)."""
    for key in keys:
        if key in values:
            count = int(values[key])
            if count < 0:
                raise ValueError(f"{key} must be 0 or more")
            settings[key] = count
