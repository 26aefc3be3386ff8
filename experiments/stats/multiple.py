"""Multiple-comparison correction of p-values across arms x metrics.

Testing three treatments on four metrics makes twelve tests; at alpha = 5 % each, the
chance that at least one null effect looks significant is far above 5 %. Two corrections:

- ``holm``: Holm's step-down procedure controls the family-wise error rate (the chance
  of any false positive) under any dependence, and is uniformly more powerful than
  Bonferroni;
- ``bh``: Benjamini–Hochberg controls the false discovery rate (the expected share of
  false positives among the discoveries), valid for independent or positively dependent
  tests;
- ``none``: the raw p-values.

Both are computed by ``statsmodels.stats.multitest.multipletests``. Missing p-values
(None, e.g. from the Bayesian method) are left out of the family and stay None.

>>> adjust_p_values([0.01, 0.04, None, 0.03], "holm")
[0.03, 0.06, None, 0.06]
>>> [round(p, 3) for p in adjust_p_values([0.01, 0.04, 0.03], "bh")]
[0.03, 0.04, 0.04]

References: Holm (1979), "A Simple Sequentially Rejective Multiple Test Procedure",
Scandinavian Journal of Statistics; Benjamini, Hochberg (1995), "Controlling the False
Discovery Rate", JRSS B.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from statsmodels.stats.multitest import multipletests

Correction = Literal["holm", "bh", "none"]
_METHODS = {"holm": "holm", "bh": "fdr_bh"}


def adjust_p_values(
    p_values: Sequence[float | None], correction: Correction = "holm"
) -> list[float | None]:
    """Adjusted p-values in the input order; None (or NaN) entries stay None."""
    if correction not in ("holm", "bh", "none"):
        raise ValueError(f"correction must be 'holm', 'bh' or 'none', got {correction!r}")
    index = [i for i, p in enumerate(p_values) if p is not None and math.isfinite(p)]
    out: list[float | None] = [None] * len(p_values)
    if not index:
        return out
    raw = [float(p_values[i]) for i in index]
    if correction == "none":
        adjusted = raw
    else:
        adjusted = multipletests(raw, method=_METHODS[correction])[1].tolist()
    for i, p in zip(index, adjusted, strict=True):
        out[i] = float(p)
    return out
