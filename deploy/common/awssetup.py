"""Everyday AWS set-up problems, each as one line that names the cause and the fix (exit 2).

A missing or unknown profile, an SSO session that is not logged in or has expired, no
credentials, no region, an endpoint that cannot be reached (a stale ``AWS_ENDPOINT_URL`` after
``local down``, no network), expired or refused credentials: botocore raises each as its own
exception or error code; :func:`explain` turns the ones it knows into :class:`AwsSetupError`,
which the command line reports without a traceback (and as one JSON document with ``--json``).
"""

from __future__ import annotations

import os

from botocore import exceptions as bx

from deploy.common.errors import InputError, error_code, error_message

_EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"}
_REFUSED = {
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "AuthFailure",
    "InvalidAccessKeyId",
    "IncompleteSignature",
}


class AwsSetupError(InputError):
    """The AWS set-up (profile, credentials, region, endpoint) does not let the command start."""

    def to_dict(self) -> dict:
        return {**super().to_dict(), "error": "aws_setup"}


def _profile() -> str:
    return os.environ.get("AWS_PROFILE") or os.environ.get("AWS_DEFAULT_PROFILE") or "default"


def explain(error: BaseException) -> AwsSetupError | None:
    """The set-up problem behind ``error``, or None when it is not one (a real failure)."""
    message = _message(error)
    return AwsSetupError(message) if message else None


def _message(error: BaseException) -> str | None:
    if isinstance(error, bx.ProfileNotFound):
        return f"{error}: configure it (aws configure --profile NAME), or pass an existing --profile / AWS_PROFILE"
    if isinstance(error, (bx.SSOTokenLoadError, bx.UnauthorizedSSOTokenError, bx.TokenRetrievalError)):
        return (
            f"the SSO session of profile '{_profile()}' is not logged in or has expired: "
            f"run `aws sso login --profile {_profile()}` and retry"
        )
    if isinstance(error, (bx.NoCredentialsError, bx.PartialCredentialsError)):
        return (
            "no AWS credentials found: pass --profile, set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (or run inside an AWS role)"
        )
    if isinstance(error, bx.NoRegionError):
        return "no AWS region: pass --region, or set AWS_REGION (the manifest's admin_region is used when there is one)"
    if isinstance(error, (bx.EndpointConnectionError, bx.ConnectTimeoutError, bx.ConnectionClosedError)):
        url = getattr(error, "kwargs", {}).get("endpoint_url") or ""
        if os.environ.get("AWS_ENDPOINT_URL"):
            return (
                f"cannot reach {os.environ['AWS_ENDPOINT_URL']} (AWS_ENDPOINT_URL): is the local AWS running? "
                "`python -m deploy local up`, or `unset AWS_ENDPOINT_URL` to use AWS"
            )
        return f"cannot reach AWS at {url or 'its endpoint'}: check the network (proxy, VPN) and --region"
    if isinstance(error, bx.ClientError):
        code = error_code(error)
        if code in _EXPIRED:
            return f"the AWS session has expired ({code}): refresh the credentials (aws sso login, or a new session)"
        if code in _REFUSED:
            return f"the AWS credentials were refused ({code}): {error_message(error)}; check the keys or --profile"
    return None
