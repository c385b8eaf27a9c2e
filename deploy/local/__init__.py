"""Local AWS: a moto server on loopback, patched where the product depends on behaviour
moto lacks, seeded with an Organization, so ``plan``/``apply``/``publish`` run offline.

``python -m deploy local up|down|status|env`` drives it; ``deploy.local.server`` is the
server process itself and ``deploy.local.seed`` creates the Organization.
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
SERVER_MODULE = "deploy.local.server"
