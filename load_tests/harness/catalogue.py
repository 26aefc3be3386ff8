"""The number of candidates as a benchmark variable: a copy of the configuration whose
catalogue has `n` actions, every one a candidate of every decision.

The first actions are the configured ones; the rest are copies of them under new ids
(``email_10_6``, ...) with the same channel, cost and eligibility, so consent and
eligibility mask them as they mask the originals. The served model was trained on the
configured catalogue; it scores the new action codes like any unseen category, which
costs the same as scoring a known one. ``serving.max_candidates`` is raised to `n`.

>>> from configs.loader import load_config
>>> import tempfile
>>> with tempfile.TemporaryDirectory() as tmp:
...     config = load_config(config_with_actions(Path(tmp), load_config().directory, 100))
...     actions = config.actions.actions
...     len(actions), config.serving.max_candidates, [a.id for a in actions[5:8]]
(100, 100, ['no_action_5', 'email_10_6', 'email_20_7'])
"""

from __future__ import annotations

from pathlib import Path

import yaml

from harness.config_copy import config_copy, set_serving


def config_with_actions(work: Path, source: Path, n: int) -> Path:
    """A copy of the configuration directory `source` in `work` with `n` actions (n >= the
    configured number), all of them allowed as candidates of one decision."""
    target = config_copy(work, source, f"actions-{n}")
    actions_file = target / "actions.yaml"
    document = yaml.safe_load(actions_file.read_text())
    configured = list(document["actions"])  # not the list the copies are appended to
    if n < len(configured):
        raise ValueError(f"{n} actions: the catalogue already has {len(configured)}")
    ranks = max(a["fallback_rank"] for a in configured)
    for k in range(len(configured), n):
        original = configured[k % len(configured)]
        ranks += 1
        document["actions"].append(
            {**original, "id": f"{original['id']}_{k}", "fallback_rank": ranks}
        )
    actions_file.write_text(yaml.safe_dump(document, sort_keys=False))
    configured_max = yaml.safe_load((target / "serving.yaml").read_text()).get("max_candidates", 0)
    set_serving(target, {"max_candidates": max(n, configured_max)})
    return target
