"""A delivery worker for tests/governance/test_outbox.py to kill mid-delivery (not a test
module).

``python tests/governance/outbox_child.py ACTIONS_DB URL``: one round of the outbox worker
at NOON, delivering e-mail to the webhook at URL, whose receiver holds the request until
the test has killed this process.
"""

from __future__ import annotations

import sys
from pathlib import Path

from outbox_helpers import NOON, SETTINGS  # tests/governance/, beside this file

from liftgate.governance.action_store import ActionStore
from liftgate.governance.connectors import WebhookConnector
from liftgate.governance.outbox import OutboxWorker

if __name__ == "__main__":
    actions_db, url = sys.argv[1:]
    connectors = {"email": WebhookConnector(url, timeout_s=60)}
    OutboxWorker(ActionStore(Path(actions_db)), connectors, SETTINGS).run_once(NOON)
