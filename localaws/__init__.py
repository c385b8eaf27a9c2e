"""Local AWS: a moto server on loopback, patched where the product depends on behaviour
moto lacks, seeded with an Organization, so ``plan``/``apply``/``publish`` run offline.

A top-level package of its own (it was ``deploy/local/``), installed with the ``[local]``
extra (moto): the deployer and the publisher (``deploy``) never import it.
``python -m deploy local up|down|status|env`` loads it on demand (``localaws.cli``);
``localaws.server`` is the server process itself, ``localaws.seed`` creates the
Organization, ``localaws.lifecycle`` starts and stops it, ``localaws.patches`` close
moto's gaps, and ``python -m localaws.demo`` is the main job offline (``make demo``).
"""

from __future__ import annotations

# moto answers requests signed with unknown keys as its default account: that is the
# management account of the seeded Organization.
MANAGEMENT_ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"
STATE_DIR = ".local-aws"
# Dummy credentials: never real ones, so nothing can reach AWS with them by accident.
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
# Marks our server's command line: ``down`` only stops a pid whose cmdline carries it.
SERVER_MODULE = "localaws.server"

# The moto releases the patches in localaws.patches are written and tested against: they reach
# into moto's private backends, so another minor release may break them silently.
# setup.cfg's [local] extra pins the same range; tests/test_local.py fails loudly outside it.
SUPPORTED_MOTO = ((5, 2, 5), (5, 3, 0))  # lower bound included, upper bound excluded


def moto_version_supported(version: str) -> bool:
    """Whether ``version`` (moto.__version__) lies in :data:`SUPPORTED_MOTO`."""
    parts = []
    for piece in version.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    low, high = SUPPORTED_MOTO
    return low <= tuple(parts) < high
