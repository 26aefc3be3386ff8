"""`liftgate uplift train` and `liftgate uplift metrics`.

Thin: read and validate input (naming the file, column or option that is wrong; exit 2),
call :mod:`experiments.uplift`, print the results or, with ``--json``, one JSON document on
stdout. Importing this module is cheap; NumPy, pandas and LightGBM are imported when a
command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from liftgate.app.cli.common import ConfigDirOption, JsonOption, session
from liftgate.app.cli.group import CommandGroup
from liftgate.app.cli.output import emit, say
from liftgate.core.errors import InputError

if TYPE_CHECKING:
    from configs.loader import LiftgateConfig

# The keys of experiments.uplift.learners.LEARNERS (LightGBM: slow to import; a test keeps
# them equal).
Learner = Literal["s", "t", "x"]

app = CommandGroup(help="Uplift models (S/T/X-learners) and uplift metrics.")


def _parse_k(text: str) -> float | int:
    try:
        value = float(text)
    except ValueError:
        raise InputError(
            f"--k: expected a fraction in (0, 1) or a row count; got {text!r}"
        ) from None
    if value >= 1 and value.is_integer():
        return int(value)
    if not 0 < value < 1:
        raise InputError(f"--k: expected a fraction in (0, 1) or a row count; got {text!r}")
    return value


def format_metrics(doc: dict) -> str:
    def fmt(x):
        return "-" if x is None else f"{x:+.4f}"

    return "\n".join(
        [
            f"uplift metrics on {doc['n']:,} rows (k = {doc['k']})",
            f"  uplift@k overall   {fmt(doc['uplift_at_k']['overall'])}",
            f"  uplift@k by_group  {fmt(doc['uplift_at_k']['by_group'])}",
            f"  Qini AUC (norm.)   {fmt(doc['qini_auc'])}",
            f"  uplift AUC (norm.) {fmt(doc['uplift_auc'])}",
        ]
    )


@app.command("metrics")
def metrics_command(
    data: Annotated[Path, typer.Argument(help="Scored rows: a Parquet file/dir or CSV.")],
    treatment_col: Annotated[str, typer.Option("--treatment-col", help="0/1 treatment.")],
    outcome_col: Annotated[str, typer.Option("--outcome-col", help="0/1 outcome.")],
    score_col: Annotated[str, typer.Option("--score-col", help="Predicted uplift.")],
    k: Annotated[str, typer.Option("--k", help="Top share (0, 1) or row count.")] = "0.3",
    plot: Annotated[Path | None, typer.Option("--plot", help="Save Qini/uplift curves.")] = None,
    as_json: JsonOption = False,
) -> None:
    """uplift@k (overall and by_group), normalized Qini AUC and uplift AUC of scored rows.

    **Examples:**

    * `liftgate uplift metrics scored.parquet --treatment-col t --outcome-col y --score-col s`
    * `liftgate uplift metrics scored.csv --treatment-col t --outcome-col y --score-col s
      --k 0.3 --plot curves.png --json`
    """
    import numpy as np

    from experiments.uplift.metrics import check_binary, uplift_metrics
    from liftgate.core.tables import read_table

    k_value = _parse_k(k)
    options = [
        ("--treatment-col", treatment_col),
        ("--outcome-col", outcome_col),
        ("--score-col", score_col),
    ]
    table = read_table(data, {column: option for option, column in options})
    arrays = {}
    for option, column in options:
        values = table.column(column).to_numpy(zero_copy_only=False)
        if values.dtype == object or np.issubdtype(values.dtype, np.datetime64):
            raise InputError(f"{data}: column {column!r} (from {option}) must be numeric")
        values = values.astype(np.float64)
        if np.isnan(values).any():
            raise InputError(f"{data}: column {column!r} (from {option}) has missing values")
        arrays[option] = values
    for option, name in (("--treatment-col", treatment_col), ("--outcome-col", outcome_col)):
        try:
            check_binary(name, arrays[option])
        except ValueError as exc:
            raise InputError(f"{data}: column {exc.args[0]} (from {option})") from None
    y, t, s = arrays["--outcome-col"], arrays["--treatment-col"], arrays["--score-col"]
    try:
        result = uplift_metrics(y, s, t, k=k_value)
    except ValueError as exc:
        raise InputError(f"{data}: {exc.args[0]}") from None
    document = {"data": str(data), **result.to_dict()}
    if plot is not None:
        from experiments.uplift.plots import plot_curves

        plot_curves(y, s, t, plot)
        document["plot"] = str(plot)
    emit(document, as_json, lambda: typer.echo(format_metrics(document)))


@app.command("train")
def train_command(
    ctx: typer.Context,
    data: Annotated[Path, typer.Option("--data", help="World directory with logged.parquet.")],
    treatment: Annotated[str, typer.Option("--treatment", help="Treatment action id.")],
    control: Annotated[str, typer.Option("--control", help="Control action id.")] = "no_action",
    learner: Annotated[Learner, typer.Option("--learner", help="The meta-learner.")] = "t",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Where to pickle the model (default: LIFTGATE_HOME/uplift_models/; arms "
            "serve models from there only).",
        ),
    ] = None,
    test_size: Annotated[
        float, typer.Option("--test-size", min=0.01, max=0.99, help="Held-out share.")
    ] = 0.3,
    k: Annotated[str, typer.Option("--k", help="Top share for uplift@k.")] = "0.3",
    seed: Annotated[int, typer.Option("--seed")] = 0,
    plot: Annotated[Path | None, typer.Option("--plot", help="Save held-out curves.")] = None,
    _config_dir: ConfigDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Train an uplift learner on a world's randomized log (treatment vs control actions),
    report held-out metrics (and the correlation with the true uplift when truth.parquet
    is there) and save the model with its SHA-256 (`MODEL.sha256`), which replicas check
    before they load it.

    **Examples:**

    * `liftgate uplift train --data data/w --treatment email_20 --control no_action --learner x`
    * `liftgate uplift train --data data/w --treatment email_20 --out uplift.pkl --json`
    """
    cli = session(ctx)
    out = out or cli.home.uplift_models / f"uplift-{treatment}-vs-{control}-{learner}.pkl"
    document = _train(data, treatment, control, learner, out, test_size, k, seed, plot, cli.config)
    emit(document, as_json, lambda: typer.echo(format_training(document)))


def _train(
    data, treatment, control, learner, out, test_size, k, seed, plot, config: LiftgateConfig
):
    import numpy as np
    import pandas as pd

    from experiments.uplift.data import two_arm_data
    from experiments.uplift.learners import LEARNERS
    from experiments.uplift.metrics import uplift_metrics
    from liftgate.core.contract import FeatureContract
    from serving.uplift_arm import save_uplift_model

    k_value = _parse_k(k)
    path = data / "logged.parquet" if data.is_dir() else data
    if not path.exists():
        raise FileNotFoundError(f"--data {data}: no logged.parquet found")
    contract = FeatureContract(config.features)
    logged = pd.read_parquet(path)
    try:
        arms = two_arm_data(logged, treatment, control, contract)
    except InputError as exc:
        if exc.parameter:  # an option: its flag is named
            raise
        raise InputError(f"{path}: {exc}") from None
    n = len(arms.y)
    if n < 100:
        raise InputError(f"{path}: only {n} rows with {treatment!r} or {control!r}")
    if not set(np.unique(arms.y)) <= {0.0, 1.0}:
        raise InputError(f"{path}: column 'converted' must be 0/1")
    test = np.random.default_rng(seed).random(n) < test_size
    say(f"training the {learner.upper()}-learner on {int((~test).sum()):,} rows")
    model = LEARNERS[learner](categorical_features=arms.categorical, random_state=seed)
    model.fit(arms.X[~test], arms.treatment[~test], arms.y[~test])
    score = model.predict_uplift(arms.X[test])
    y_test, t_test = arms.y[test], arms.treatment[test]
    try:
        metrics = uplift_metrics(y_test, score, t_test, k=k_value).to_dict()
    except ValueError as exc:  # --k, or a held-out set without one of the groups
        raise InputError(f"{path}: held-out rows: {exc}") from None
    document = {
        "data": str(path),
        "learner": learner,
        "treatment": treatment,
        "control": control,
        "n_train": int((~test).sum()),
        "n_test": int(test.sum()),
        "treated_share": float(arms.treatment.mean()),
        "observed_ate_test": float(y_test[t_test == 1].mean() - y_test[t_test == 0].mean()),
        "metrics": metrics,
        "mean_predicted_uplift_test": float(score.mean()),
    }
    truth_path = path.parent / "truth.parquet"
    if truth_path.exists():
        document["true_uplift_correlation"] = _truth_correlation(
            truth_path, arms.rows[test], score, treatment, control
        )
    save_uplift_model(
        out,
        {
            "model": model,
            "treatment": treatment,
            "control": control,
            "features": list(arms.feature_names),
            "contract_version": contract.version,
        },
    )
    document["model_path"] = str(out)
    if plot is not None:
        from experiments.uplift.plots import plot_curves

        plot_curves(y_test, score, t_test, plot)
        document["plot"] = str(plot)
    return document


def _truth_correlation(truth_path, rows, score, treatment, control) -> float | None:
    """Pearson correlation of predicted and true uplift (before any drift) on held-out rows."""
    import numpy as np
    import pandas as pd

    truth = pd.read_parquet(
        truth_path, columns=["customer_id", "action", "regime", "conversion_probability"]
    )
    truth = truth[truth["regime"] == "before_drift"]
    wide = truth.pivot_table(index="customer_id", columns="action", values="conversion_probability")
    if treatment not in wide.columns or control not in wide.columns:
        return None
    true_uplift = (wide[treatment] - wide[control]).reindex(rows["customer_id"]).to_numpy()
    known = np.isfinite(true_uplift)
    if known.sum() < 3:
        return None
    return float(np.corrcoef(score[known], true_uplift[known])[0, 1])


def format_training(doc: dict) -> str:
    m = doc["metrics"]

    def fmt(x):
        return "-" if x is None else f"{x:+.4f}"

    lines = [
        f"{doc['learner'].upper()}-learner: {doc['treatment']} vs {doc['control']} — "
        f"trained on {doc['n_train']:,} rows, held out {doc['n_test']:,}",
        f"  observed ATE (held out)  {fmt(doc['observed_ate_test'])}",
        f"  mean predicted uplift    {fmt(doc['mean_predicted_uplift_test'])}",
        f"  uplift@{m['k']} overall     {fmt(m['uplift_at_k']['overall'])}",
        f"  uplift@{m['k']} by_group    {fmt(m['uplift_at_k']['by_group'])}",
        f"  Qini AUC (normalized)    {fmt(m['qini_auc'])}",
        f"  uplift AUC (normalized)  {fmt(m['uplift_auc'])}",
    ]
    if "true_uplift_correlation" in doc:
        lines.append(f"  corr(pred, true uplift)  {fmt(doc['true_uplift_correlation'])}")
    lines.append(f"model saved to {doc['model_path']}")
    return "\n".join(lines)
