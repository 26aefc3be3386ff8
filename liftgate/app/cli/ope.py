"""`liftgate ope`: off-policy evaluation of a policy on a logged table (Parquet or CSV).

Thin: it reads and validates the input (naming the file, column or option that is wrong;
exit 2), builds the evaluation policy and, when needed, the cross-fitted reward model, calls
:func:`experiments.ope.evaluate.evaluate`, and prints a table or, with ``--json``, one JSON
document on stdout. Importing this module is cheap; NumPy, pandas and LightGBM are imported
when the command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from liftgate.app.cli.common import ConfigDirOption, JsonOption, session
from liftgate.app.cli.group import CommandGroup
from liftgate.app.cli.output import emit, print_table, say, table_of
from liftgate.core.errors import InputError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from configs.loader import LiftgateConfig
    from liftgate.core.home import Home

# experiments.ope.policies.BUILT_IN (NumPy: slow to import; a test keeps them equal).
Policy = Literal["uniform", "greedy-model"]
#: The optional column that joins the log's rows to the action log.
DECISION_ID = "decision_id"

app = CommandGroup()


def read_log(path: Path, required: dict[str, str], optional: tuple[str, ...] = ()):
    """The ``required`` columns (column -> the option that named it) and whichever of
    ``optional`` exist, as a pandas DataFrame; errors name the file and the column/option."""
    from liftgate.core.tables import read_table

    return read_table(path, required, optional).to_pandas()


def _load_matrix(path: Path, option: str, shape: tuple[int, int | None]) -> np.ndarray:
    import numpy as np

    if not path.exists():
        raise FileNotFoundError(f"{option} {path}: file not found")
    try:
        matrix = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"{option} {path}: not a .npy array: {exc}") from None
    n, k = shape
    if matrix.ndim != 2 or matrix.shape[0] != n or (k is not None and matrix.shape[1] != k):
        want = f"({n}, {k if k is not None else 'K'})"
        raise InputError(f"{option} {path}: expected shape {want}; got {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise InputError(f"{option} {path}: contains NaN or infinite values")
    return matrix.astype(np.float64)


def _action_codes(frame: pd.DataFrame, column: str, log: Path, catalogue) -> tuple[Any, bool]:
    """Integer codes of the action column and whether they were mapped from catalogue ids."""
    import numpy as np
    import pandas as pd

    values = frame[column]
    if pd.api.types.is_integer_dtype(values):
        codes = values.to_numpy(dtype=np.int64)
        if (codes < 0).any():
            raise InputError(f"{log}: column {column!r} (--action-col) has negative codes")
        return codes, False
    if pd.api.types.is_float_dtype(values):
        raise InputError(
            f"{log}: column {column!r} (--action-col) must hold integer codes 0..K-1 "
            "or action ids; got floats"
        )
    try:
        return catalogue.codes(values.astype(str)), True
    except KeyError as exc:
        raise InputError(f"{log}: column {column!r} (--action-col): {exc.args[0]}") from None


def _support(frame: pd.DataFrame, n_actions: int, mapped: bool, catalogue) -> np.ndarray:
    """Eligibility from the catalogue when actions are its ids and the rules' columns exist."""
    import numpy as np

    features = {rule.feature for a in catalogue.actions for rule in a.eligibility}
    if mapped and features <= set(frame.columns):
        return catalogue.eligibility_mask({c: frame[c] for c in features}, n_rows=len(frame))
    return np.ones((len(frame), n_actions), dtype=bool)


@app.command("ope")
def ope_command(
    ctx: typer.Context,
    log: Annotated[Path, typer.Argument(help="Logged decisions: a Parquet file/dir or CSV.")],
    policy: Annotated[
        Policy | None, typer.Option("--policy", help="A built-in evaluation policy.")
    ] = None,
    policy_probs: Annotated[
        Path | None,
        typer.Option("--policy-probs", help="(n, K) .npy of the evaluation policy per row."),
    ] = None,
    reward_hat: Annotated[
        Path | None,
        typer.Option("--reward-hat", help="(n, K) .npy of estimated rewards (else fitted)."),
    ] = None,
    action_col: Annotated[str, typer.Option("--action-col")] = "action",
    reward_col: Annotated[str, typer.Option("--reward-col")] = "reward",
    propensity_col: Annotated[str, typer.Option("--propensity-col")] = "propensity",
    feature_cols: Annotated[
        str | None,
        typer.Option(
            "--feature-cols",
            help="Comma-separated reward-model features (default: the contract's features).",
        ),
    ] = None,
    folds: Annotated[int, typer.Option("--folds", min=2, help="Cross-fitting folds.")] = 3,
    resamples: Annotated[
        int, typer.Option("--resamples", min=1, help="Bootstrap resamples.")
    ] = 1000,
    alpha: Annotated[
        float, typer.Option("--alpha", min=0.0, max=1.0, help="1 - interval level.")
    ] = 0.05,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    _config_dir: ConfigDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Estimate a policy's value from logged decisions: IPW, SNIPW, DM, DR, SNDR with
    bootstrap intervals, overlap diagnostics and the logged policy's mean reward.

    Give the evaluation policy as a built-in (`--policy`) or as its probabilities per row
    (`--policy-probs`). Without `--reward-hat`, a cross-fitted LightGBM reward model is fitted.

    When the log has a `decision_id` column, the shares of its decisions whose action was
    delivered, refused, ... (the action log under LIFTGATE_HOME) are reported too. Every
    row stays in: the estimates are of the decision policy (intent to treat).

    **Examples:**

    * `liftgate ope data/w/logged.parquet --policy greedy-model --reward-col converted`
    * `liftgate ope log.parquet --policy-probs probs.npy --reward-hat rhat.npy --json`
    """
    cli = session(ctx)
    document = _run(
        log,
        policy,
        policy_probs,
        reward_hat,
        action_col,
        reward_col,
        propensity_col,
        feature_cols,
        folds,
        resamples,
        alpha,
        seed,
        cli.config,
        cli.home,
    )
    emit(document, as_json, lambda: print_report(document))


def _run(
    log,
    policy,
    policy_probs,
    reward_hat_path,
    action_col,
    reward_col,
    propensity_col,
    feature_cols,
    folds,
    resamples,
    alpha,
    seed,
    config: LiftgateConfig,
    home: Home,
) -> dict:
    import numpy as np

    from experiments.ope import policies
    from experiments.ope.evaluate import evaluate
    from experiments.ope.reward_model import (
        CrossFittedRewardModel,
        column_features,
        contract_features,
    )
    from liftgate.core.catalogue import ActionCatalogue
    from liftgate.core.contract import FeatureContract

    if (policy is None) == (policy_probs is None):
        raise InputError("give exactly one of --policy NAME or --policy-probs FILE.npy")
    contract = FeatureContract(config.features)
    catalogue = ActionCatalogue(config.actions)
    named = [c.strip() for c in feature_cols.split(",")] if feature_cols else []
    if feature_cols is not None and not all(named):
        raise InputError(f"--feature-cols: expected a,b,...; got {feature_cols!r}")
    required = {
        action_col: "--action-col",
        reward_col: "--reward-col",
        propensity_col: "--propensity-col",
        **{c: "--feature-cols" for c in named},
    }
    eligibility_features = tuple(r.feature for a in catalogue.actions for r in a.eligibility)
    optional = (*contract.names, *eligibility_features, "customer_id", DECISION_ID)
    frame = read_log(log, required, optional)
    n = len(frame)
    if n == 0:
        raise InputError(f"{log}: no rows")
    action, mapped = _action_codes(frame, action_col, log, catalogue)
    try:
        reward = frame[reward_col].to_numpy(dtype=np.float64, na_value=np.nan)
        pscore = frame[propensity_col].to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        raise InputError(
            f"{log}: columns {reward_col!r} (--reward-col) and {propensity_col!r} "
            "(--propensity-col) must be numeric"
        ) from None
    if not np.isfinite(reward).all():
        raise InputError(f"{log}: column {reward_col!r} (--reward-col) has missing values")
    if not ((pscore > 0) & (pscore <= 1)).all():
        raise InputError(
            f"{log}: column {propensity_col!r} (--propensity-col) must lie in (0, 1] on every row"
        )

    action_dist = reward_hat = None
    k = len(catalogue) if mapped else None
    if policy_probs is not None:
        action_dist = _load_matrix(policy_probs, "--policy-probs", (n, k))
        if (action_dist < 0).any() or np.abs(action_dist.sum(axis=1) - 1).max() > 1e-6:
            raise InputError(
                f"--policy-probs {policy_probs}: rows must be probabilities summing to 1"
            )
        k = action_dist.shape[1]
    if reward_hat_path is not None:
        reward_hat = _load_matrix(reward_hat_path, "--reward-hat", (n, k))
        k = reward_hat.shape[1]
    if k is None:
        k = int(action.max()) + 1
    if action.max() >= k:
        raise InputError(
            f"{log}: column {action_col!r} (--action-col) has code {int(action.max())} but "
            f"the policy has K = {k} actions"
        )

    model_note = None
    if reward_hat is None:
        if named:
            x, categorical = column_features(frame, named)
            model_note = f"reward model on --feature-cols {', '.join(named)}"
        else:
            x, categorical = contract_features(frame, contract)
            present = [c for c in contract.names if c in frame.columns]
            model_note = f"reward model on {len(present)} contract features"
        say(f"fitting a {folds}-fold cross-fitted LightGBM reward model on {n:,} rows")
        model = CrossFittedRewardModel(
            n_folds=folds, categorical_features=categorical, random_state=seed
        )
        reward_hat = model.fit_predict(x, action, reward, n_actions=k)

    if action_dist is None:
        support = _support(frame, k, mapped, catalogue)
        if policy == "uniform":
            action_dist = policies.uniform(support)
        else:
            action_dist = policies.greedy(reward_hat, support)

    report = evaluate(reward, action, pscore, action_dist, reward_hat, alpha, resamples, seed)
    document = report.to_dict()
    document["policy"] = policy or str(policy_probs)
    document["log"] = str(log)
    document["alpha"] = alpha
    document["reward_model"] = model_note or f"--reward-hat {reward_hat_path}"
    document["sent"] = _sent(frame, home) if DECISION_ID in frame.columns else None
    if mapped:
        document["actions"] = list(catalogue.ids)
    return document


def _sent(frame: pd.DataFrame, home: Home) -> dict:
    """The log's decisions by what became of their actions (`experiments.sent`)."""
    import pyarrow as pa

    from experiments.logs.reader import read_actions
    from experiments.sent import decision_fates, fate_counts

    ids = pa.array(frame[DECISION_ID].astype(str))
    try:
        counts = fate_counts(decision_fates(ids, read_actions(home.action_log)))
    except ValueError as exc:
        raise InputError(f"{home.action_log}: {exc}") from None
    n = len(frame)
    return {"decisions": n, "fates": counts, "shares": {f: c / n for f, c in counts.items()}}


def print_report(document: dict) -> None:
    typer.echo(
        f"off-policy evaluation of {document['policy']} on {document['n']:,} rows "
        f"({document['n_actions']} actions; {document['reward_model']})"
    )

    def fmt(x: float | None) -> str:
        return "-" if x is None else f"{x:.4f}"

    level = f"{1 - document['alpha']:.0%} interval"
    estimates = table_of("estimator", "value", level, numeric=["value"])
    for name, est in document["estimates"].items():
        if est is None:
            estimates.add_row(name, "-", "")
        else:
            interval = f"[{fmt(est['ci_low'])}, {fmt(est['ci_high'])}]"
            estimates.add_row(name, fmt(est["value"]), interval)
    estimates.add_row("logged", fmt(document["on_policy_value"]), "(behaviour policy)")
    print_table(estimates)
    typer.echo(
        f"effective sample size {document['ess']:,.0f} ({document['ess_ratio']:.1%} of rows); "
        f"largest weight {document['max_weight']:.2f}"
    )
    sent = document.get("sent")
    if sent is not None:
        shares = ", ".join(f"{fate} {share:.1%}" for fate, share in sent["shares"].items())
        typer.echo(
            f"sent (action log), of {sent['decisions']:,} decisions: {shares}; the estimates "
            "are of the decision policy (intent to treat): refusals come after the choice"
        )
    for warning in document["warnings"]:
        typer.echo(f"WARNING: {warning}")
