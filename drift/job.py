"""The production drift job: what a model version served recently against its training profile.

Reference: the training profile logged with the model version
(``reference/training_profile.parquet`` of its MLflow run, see
:mod:`registry.training_run`): the last training rows of the design matrix, one column per
contract feature plus ``action`` (the logged action's code), and ``prediction``, the
model's P(conversion) of that row.

Current: the decisions the same version served in a window (the last ``1h``, ``30m``,
``1d``… before now, or the last ``N rows``), read from the decision log. A decision's
``features`` is the contract-encoded vector, the same transform and order as the design
matrix's first columns (``liftgate.core.contract.design_matrix`` appends the action code), so
column ``i`` of the vector is named after column ``i`` of the profile. Fallback decisions
carry no model score (their probabilities are NaN) and are dropped.

The prediction compared is P(conversion) of one action per decision. In the profile it is
the action the *training log* took, which the world's logging policy draws uniformly from
the eligible actions; so by default (``prediction_action="uniform"``) the job takes the
probability of an action drawn uniformly (seeded) from the decision's ranked candidates,
which keeps the joint distribution of (features, action, prediction) the same when nothing
drifted. ``"chosen"`` takes the served action's probability instead: that is what the
policy acts on, but a greedy policy picks the actions with the best scores, so it differs
from the profile by design and flags drift even when nothing changed.

Input drift is tested on the contract features (``action`` is the policy's output, not an
input); the prediction gets its own verdict. Types come from the contract: categories and
booleans are categorical, the rest numerical. The tests are Evidently's, as in
:mod:`drift.compare`; the profile has 20 000 rows, so numerical features get the normed
Wasserstein distance and categorical ones the Jensen-Shannon distance (drift at >= 0.1),
and the window drifts when at least ``threshold`` (0.5) of the features drift.

>>> parse_window("30m").seconds, parse_window("5000 rows").rows
(1800.0, 5000)
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from configs.loader import LiftgateConfig
from drift.columns import CATEGORICAL, NUMERICAL
from drift.compare import (
    DEFAULT_SEED,
    DEFAULT_THRESHOLD,
    MAX_CHUNK_ROWS,
    MAX_REFERENCE_ROWS,
    ColumnDrift,
    check_threshold,
    column_drift,
    compare_tables,
    sample_positions,
    save_html_report,
)
from liftgate.core.catalogue import ActionCatalogue
from liftgate.core.contract import ACTION_COLUMN
from liftgate.core.errors import InputError
from liftgate.core.home import Home
from liftgate.core.vocabulary import CHAMPION, TAG_CONTRACT_VERSION

PREDICTION = "prediction"
DEFAULT_WINDOW = "1d"
#: Fewer decisions than this are refused: distances on small samples are noisy.
MIN_ROWS = 500
PREDICTION_ACTIONS = ("uniform", "chosen")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_ROWS = re.compile(r"^\s*(\d[\d_]*)\s*(?:rows?)?\s*$")


class InsufficientData(InputError):
    """The window holds too few decisions of the model version to compare."""


@dataclass(frozen=True)
class Window:
    """The last ``seconds`` before the run, or the last ``rows`` decisions."""

    text: str
    seconds: float | None = None
    rows: int | None = None

    def to_dict(self) -> dict[str, Any]:
        kind = "rows" if self.rows is not None else "time"
        return {"spec": self.text, "kind": kind, "seconds": self.seconds, "rows": self.rows}


def parse_window(text: str) -> Window:
    """``30m``, ``1h``, ``1d``, ``90s`` (a time span) or ``5000``/``5000 rows`` (a count)."""
    if match := _DURATION.match(text):
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
        if seconds > 0:
            return Window(text.strip(), seconds=seconds)
    elif (match := _ROWS.match(text)) and int(match.group(1).replace("_", "")) > 0:
        return Window(text.strip(), rows=int(match.group(1).replace("_", "")))
    raise InputError(
        f"expected a time span like 30m, 1h, 1d or a row count like 5000 rows; got {text!r}",
        parameter="window",
    )


def _check_prediction_action(prediction_action: str) -> None:
    if prediction_action not in PREDICTION_ACTIONS:
        raise InputError(
            f"expected one of {', '.join(PREDICTION_ACTIONS)}; got {prediction_action!r}",
            parameter="prediction_action",
        )


@dataclass(frozen=True)
class DriftJobResult:
    model: dict[str, str | None]  # name, version, alias
    window: dict[str, Any]  # spec, kind, seconds, rows, start, end
    rows: int
    reference_rows: int
    dataset_drift: bool
    drift_share: float
    drifted_columns: list[str]
    prediction_drift: ColumnDrift
    columns: dict[str, ColumnDrift]
    html: str | None
    threshold: float
    prediction_action: str
    rows_tested: int
    notes: list[str] = field(default_factory=list)

    @property
    def drifted(self) -> bool:
        """Input drift or prediction drift."""
        return self.dataset_drift or self.prediction_drift.drifted

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "window": self.window,
            "rows": self.rows,
            "rows_tested": self.rows_tested,
            "reference_rows": self.reference_rows,
            "dataset_drift": self.dataset_drift,
            "drift_share": self.drift_share,
            "drifted_columns": self.drifted_columns,
            "prediction_drift": self.prediction_drift.to_dict(),
            "columns": {name: column.to_dict() for name, column in self.columns.items()},
            "html": self.html,
            "threshold": self.threshold,
            "prediction_action": self.prediction_action,
            "notes": self.notes,
        }


# --- pure: decisions → the profile's columns --------------------------------------------------


def decision_frame(
    decisions: pa.Table,
    feature_names: Sequence[str],
    catalogue: ActionCatalogue,
    prediction_action: str = "uniform",
    seed: int = DEFAULT_SEED,
) -> pd.DataFrame:
    """Logged decisions as the training profile's columns: the features by name, ``action``
    (code of the action whose probability is taken) and ``prediction``; rows without a
    model score (NaN probability, fallbacks) are dropped."""
    _check_prediction_action(prediction_action)
    n, width = decisions.num_rows, len(feature_names)
    columns = [*feature_names, ACTION_COLUMN, PREDICTION]
    if n == 0:
        return pd.DataFrame({c: pd.Series(dtype=np.float64) for c in columns})
    lengths = pc.list_value_length(decisions["features"]).to_numpy(zero_copy_only=False)
    if (lengths != width).any():
        found = sorted({int(x) for x in np.unique(lengths)} - {width})
        raise InputError(
            f"decision log: feature vectors of length {found} where the training profile has "
            f"{width} features ({', '.join(feature_names)}): another feature contract"
        )
    features = pc.list_flatten(decisions["features"]).to_numpy().reshape(n, width)
    counts = pc.list_value_length(decisions["actions"]).to_numpy(zero_copy_only=False)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    actions = pc.list_flatten(decisions["actions"]).to_numpy(zero_copy_only=False)
    probabilities = pc.list_flatten(decisions["probabilities"]).to_numpy()
    if prediction_action == "uniform":
        draw = np.random.default_rng(seed).random(n)
        pick = offsets + np.minimum((draw * counts).astype(np.int64), np.maximum(counts - 1, 0))
    else:
        chosen = decisions["chosen"].to_numpy(zero_copy_only=False)
        parents = pc.list_parent_indices(decisions["actions"]).to_numpy()
        hits = np.flatnonzero(actions == chosen[parents])
        pick = np.full(n, -1, dtype=np.int64)
        pick[parents[hits][::-1]] = hits[::-1]  # the first match of each row wins
    scored = (counts > 0) & (pick >= 0)
    pick = np.where(scored, pick, 0)
    prediction = np.where(scored, probabilities[pick], np.nan)
    frame = pd.DataFrame(features, columns=list(feature_names))
    frame[ACTION_COLUMN] = catalogue.codes(actions[pick]).astype(np.float64)
    frame[PREDICTION] = prediction
    keep = ~np.isnan(prediction)
    if "fallback" in decisions.column_names:
        keep &= ~decisions["fallback"].to_numpy(zero_copy_only=False).astype(bool)
    return frame[keep].reset_index(drop=True)


def select_window(
    decisions: pa.Table, window: Window, name: str, version: str, now: dt.datetime
) -> pa.Table:
    """The decisions ``name`` v``version`` served in ``window`` before ``now``, oldest first."""
    ts_type = decisions["ts"].type
    served = pc.and_(
        pc.and_(
            pc.equal(decisions["model_name"], name), pc.equal(decisions["model_version"], version)
        ),
        pc.less(decisions["ts"], pa.scalar(now, ts_type)),
    )
    if window.seconds is not None:
        start = pa.scalar(now - dt.timedelta(seconds=window.seconds), ts_type)
        served = pc.and_(served, pc.greater_equal(decisions["ts"], start))
    table = decisions.filter(served).sort_by("ts")
    if window.rows is not None and table.num_rows > window.rows:
        table = table.slice(table.num_rows - window.rows)
    return table


def column_types(feature_names: Sequence[str], config: LiftgateConfig) -> dict[str, str]:
    """Categorical for the contract's categories and booleans, numerical otherwise."""
    dtypes = {spec.name: spec.dtype for spec in config.features.features}
    return {
        name: CATEGORICAL if dtypes.get(name) in ("category", "bool") else NUMERICAL
        for name in feature_names
    }


# --- the shell: registry, artifacts, log, report ----------------------------------------------


def load_reference(
    registry, name: str, model_ref: str
) -> tuple[str, str | None, pd.DataFrame, dict]:
    """(version, alias, training profile, tags) of ``model_ref``, an alias or a version."""
    version, alias = registry.resolve(name, model_ref)
    reference, tags = registry.training_profile(name, version)
    missing = [c for c in (ACTION_COLUMN, PREDICTION) if c not in reference.columns]
    if missing:
        raise InputError(f"training profile of {name} v{version}: no column {missing[0]!r}")
    return version, alias, reference, tags


def _report_dir(home: Home, now: dt.datetime) -> Path:
    base = home.drift_reports / now.strftime("%Y%m%dT%H%M%SZ")
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def run_drift_job(
    home: Home,
    config: LiftgateConfig,
    model_ref: str = CHAMPION,
    window: str | Window = DEFAULT_WINDOW,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    min_rows: int = MIN_ROWS,
    prediction_action: str = "uniform",
    html: bool | Literal["on_drift"] = True,
    html_dir: Path | None = None,
    now: dt.datetime | None = None,
    seed: int = DEFAULT_SEED,
    registry=None,
) -> DriftJobResult:
    """Compare what ``model_ref`` served in ``window`` with its training profile.

    Writes ``report.html`` (Evidently) and ``summary.json`` under
    ``LIFTGATE_HOME/drift/<UTC timestamp>/`` (or ``html_dir``) unless ``html`` is False;
    with ``html="on_drift"`` only when something drifted (the guard's schedule: the report
    takes seconds and megabytes, and is evidence only when there is drift).
    Raises RegistryError (no such alias/version), FileNotFoundError (no training profile),
    InsufficientData (fewer than ``min_rows`` scored decisions) or ValueError.
    """
    from experiments.logs.reader import read_decisions
    from registry.client import ModelRegistry

    threshold = check_threshold(threshold)
    window = parse_window(window) if isinstance(window, str) else window
    _check_prediction_action(prediction_action)
    now = now or dt.datetime.now(dt.UTC)
    registry = registry or ModelRegistry(home, config.models.registry)
    name = config.models.scorer.name
    version, alias, reference, tags = load_reference(registry, name, model_ref)
    feature_names = [c for c in reference.columns if c not in (ACTION_COLUMN, PREDICTION)]

    log_dir = home.decision_log
    start = now - dt.timedelta(seconds=window.seconds) if window.seconds is not None else None
    decisions = read_decisions(log_dir, start=start, end=now)
    decisions = select_window(decisions, window, name, version, now)
    catalogue = ActionCatalogue(config.actions)
    current = decision_frame(decisions, feature_names, catalogue, prediction_action, seed)
    described = f"{name} v{version} in the window {window.text!r} ({log_dir})"
    if len(current) < min_rows:
        raise InsufficientData(
            f"{len(current)} scored decisions of {described}; at least {min_rows} are needed "
            "for a stable comparison",
            parameter="window",
        )
    notes = []
    contracts = set(decisions["contract_version"].to_pylist())
    trained = tags.get(TAG_CONTRACT_VERSION)
    if trained is not None and contracts - {trained}:
        notes.append(
            f"decisions were encoded with contract {sorted(contracts)}, the model was trained "
            f"with {trained}: features may differ in meaning"
        )
    types = column_types(feature_names, config)
    unknown = [n for n in feature_names if n not in {s.name for s in config.features.features}]
    if unknown:
        notes.append(f"not in the configured contract, tested as numerical: {unknown}")

    scored_rows, reference_rows = len(current), len(reference)
    reference = reference.iloc[sample_positions(len(reference), MAX_REFERENCE_ROWS, seed)]
    current = current.iloc[sample_positions(len(current), MAX_CHUNK_ROWS, (seed, 0))]
    comparison = compare_tables(
        reference,
        current,
        columns=feature_names,
        categorical=[c for c, k in types.items() if k == CATEGORICAL],
        numerical=[c for c, k in types.items() if k == NUMERICAL],
        threshold=threshold,
        max_reference_rows=None,
        max_chunk_rows=None,
    )
    chunk = comparison.chunks[0]
    prediction = column_drift(reference[PREDICTION], current[PREDICTION], NUMERICAL, PREDICTION)
    timestamps = decisions["ts"]
    window_doc = {
        **window.to_dict(),
        "start": (start or pc.min(timestamps).as_py()).isoformat(),
        "end": (now if window.seconds is not None else pc.max(timestamps).as_py()).isoformat(),
    }
    result = DriftJobResult(
        model={"name": name, "version": version, "alias": alias},
        window=window_doc,
        rows=scored_rows,
        reference_rows=reference_rows,
        dataset_drift=chunk.dataset_drift,
        drift_share=chunk.drift_share,
        drifted_columns=chunk.drifted_columns,
        prediction_drift=prediction,
        columns=chunk.columns,
        html=None,
        threshold=threshold,
        prediction_action=prediction_action,
        rows_tested=len(current),
        notes=notes,
    )
    if not html or (html == "on_drift" and not result.drifted):
        return result
    out = Path(html_dir) if html_dir is not None else _report_dir(home, now)
    report = save_html_report(
        reference, current, types, threshold, out / "report.html", {PREDICTION: NUMERICAL}
    )
    result = DriftJobResult(**{**result.__dict__, "html": str(report)})
    (out / "summary.json").write_text(json.dumps(result.to_dict(), indent=2, default=str))
    return result
