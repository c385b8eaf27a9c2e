"""Exit codes and the errors that map to them."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # a rollout, a check or an AWS call failed
EXIT_INVALID = 2  # invalid input: nothing was changed


class DeployError(Exception):
    """Base of the errors the command line reports without a traceback."""

    exit_code = EXIT_FAILED


class InputError(DeployError):
    """Invalid input (manifest, catalog, options): reported before any write call.

    ``source`` names the file, ``where`` the item (a stack set, a product) and ``key`` the
    offending key, so the message says exactly what to fix.
    """

    exit_code = EXIT_INVALID

    def __init__(self, message: str, source: str | None = None, where: str | None = None, key: str | None = None):
        self.message, self.source, self.where, self.key = message, source, where, key
        super().__init__(str(self))

    def __str__(self) -> str:
        location = ": ".join(part for part in (self.source, self.where, self.key and f"key '{self.key}'") if part)
        return f"{location}: {self.message}" if location else self.message

    def to_dict(self) -> dict:
        return {
            "error": "invalid_input",
            "file": self.source,
            "where": self.where,
            "key": self.key,
            "message": self.message,
        }


class RolloutError(DeployError):
    """A rollout or check that ran and failed (exit 1)."""

    exit_code = EXIT_FAILED


def error_code(error: Exception) -> str:
    """The AWS error code of a botocore ``ClientError`` (``""`` for anything else)."""
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def error_message(error: Exception) -> str:
    """The AWS error message of a botocore ``ClientError`` (``str(error)`` for anything else)."""
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Message", "")) or str(error)
