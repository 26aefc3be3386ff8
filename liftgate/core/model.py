"""The scoring model: P(conversion | customer, action) and E[order value | conversion, ...].

Both are LightGBM boosters over the contract's features plus the action code
(`liftgate.core.contract.design_matrix`). Serving, replay and the validation gate all score
through `ScoringModel.predict`, so a logged decision can be recomputed exactly.
"""

from __future__ import annotations

import ctypes
import json
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import lightgbm as lgb
import numpy as np
from lightgbm.basic import _LIB, _safe_call
from statsmodels.stats.proportion import proportion_confint

ORDER_VALUE_FILE = "order_value.txt"
METADATA_FILE = "metadata.json"


_SINGLE_THREAD = b"num_threads=1"
_PREDICT_NORMAL = 0  # C_API_PREDICT_NORMAL
_FLOAT64 = 1  # C_API_DTYPE_FLOAT64
_ROW_MAJOR = 1
_DOUBLE = ctypes.sizeof(ctypes.c_double)
_POINTER, _INT, _INT32 = ctypes.c_void_p, ctypes.c_int, ctypes.c_int32


def _function(library: ctypes.CDLL, name: str, *argtypes) -> ctypes._CFuncPtr:
    function = getattr(library, name)
    function.argtypes, function.restype = list(argtypes), ctypes.c_int
    return function


# Function objects of our own (lightgbm's `_LIB` ones stay as it calls them). A batch goes
# through a library handle that releases the GIL for the call's length; a row (microseconds)
# through one that keeps it, so that a busy thread (a log flush) cannot take the GIL from a
# decision in the middle of its scoring.
_BATCHES, _ROWS = ctypes.CDLL(_LIB._name), ctypes.PyDLL(_LIB._name)
_PREDICT_MATRIX = _function(
    _BATCHES, "LGBM_BoosterPredictForMat",
    _POINTER, _POINTER, _INT, _INT32, _INT32, _INT, _INT, _INT, _INT, ctypes.c_char_p,
    _POINTER, _POINTER,
)  # fmt: skip
_FAST_INIT = _function(
    _ROWS, "LGBM_BoosterPredictForMatSingleRowFastInit",
    _POINTER, _INT, _INT, _INT, _INT, _INT32, ctypes.c_char_p, _POINTER,
)  # fmt: skip
# Untyped: called with pointers built once (`ctypes.c_void_p`), nothing to convert per call
# (1.3 µs a call here, against 1.6 µs for one typed to take plain ints).
_PREDICT_ROW = _ROWS.LGBM_BoosterPredictForMatSingleRowFast
_PREDICT_ROW.restype = ctypes.c_int
_FAST_FREE = _function(_ROWS, "LGBM_FastConfigFree", _POINTER)
#: Up to this many candidates of one feature row, `ScoringModel.predict_candidates` makes one
#: prepared single-row call per row; beyond, one matrix call per model, which parses its
#: parameters and builds a predictor each time. Among the rest of a decision, scoring five
#: candidates through matrix calls took 60 µs longer; at 20 the two were even, at 100 the
#: matrix calls 60-150 µs faster (the decisions of load_tests/harness/core.py, run with one
#: path, then the other).
ROW_BY_ROW_MAX = 20


class PreparedBooster:
    """`booster.predict(design)`, single-threaded, through LightGBM's C API with everything
    that does not change per call prepared once: the calls' argument types, the iteration
    range, and a fast single-row configuration (`LGBM_BoosterPredictForMatSingleRowFastInit`).

    Rows go through the same C++ predictor as `Booster.predict` (which ends in
    `LGBM_BoosterPredictForMat`): the results are equal, not close (tests assert it).
    Thread-safe: LightGBM serialises single-row calls on the booster.
    """

    def __init__(self, booster: lgb.Booster):
        self.booster = booster  # keeps the handle alive
        self._handle = booster._handle.value
        self.columns = booster.num_feature()
        self._iterations = booster.best_iteration if booster.best_iteration > 0 else -1
        fast = ctypes.c_void_p()
        _safe_call(
            _FAST_INIT(
                self._handle, _PREDICT_NORMAL, 0, self._iterations, _FLOAT64, self.columns,
                _SINGLE_THREAD, ctypes.byref(fast),
            )
        )  # fmt: skip
        self._fast = fast
        weakref.finalize(self, _FAST_FREE, fast.value)
        self._out_len = ctypes.c_int64(0)  # written by each call, read by none
        self._out_len_address = ctypes.addressof(self._out_len)
        self._out_len_pointer = ctypes.c_void_p(self._out_len_address)

    def predict(self, design: np.ndarray) -> np.ndarray:
        """One prediction per row of the (rows × columns) float64 `design`."""
        data = self.checked(design)
        out = np.empty(len(data), dtype=np.float64)
        self.predict_into(data.ctypes.data, len(data), out.ctypes.data)
        return out

    def checked(self, design: np.ndarray) -> np.ndarray:
        """`design` as a C-contiguous float64 matrix of the booster's columns (the C calls
        read that many per row), or a ValueError."""
        data = np.ascontiguousarray(design, dtype=np.float64)
        if data.ndim != 2 or data.shape[1] != self.columns:
            raise ValueError(f"expected a design of {self.columns} columns; got {data.shape}")
        return data

    def predict_into(self, design: int, rows: int, out: int) -> None:
        """Predict `rows` rows of a C-contiguous float64 design at address `design` into the
        float64s at address `out`: one matrix call."""
        _safe_call(
            _PREDICT_MATRIX(
                self._handle, design, _FLOAT64, rows, self.columns, _ROW_MAJOR, _PREDICT_NORMAL,
                0, self._iterations, _SINGLE_THREAD, self._out_len_address, out,
            )
        )  # fmt: skip

    def predict_codes(
        self,
        row: np.ndarray,
        row_pointer: ctypes.c_void_p,
        codes: Sequence[int],
        out: Sequence[ctypes.c_void_p],
    ) -> None:
        """For each action code, `row` (at `row_pointer`) with the code in its last column,
        predicted by the prepared single-row call into the float64 at the next of `out`."""
        call, fast, out_len = _PREDICT_ROW, self._fast, self._out_len_pointer
        for code, target in zip(codes, out, strict=False):  # `out` may be longer
            row[-1] = code
            if call(fast, row_pointer, out_len, target):
                _safe_call(-1)  # raises LightGBM's error


def predict_rows(booster: lgb.Booster, design: np.ndarray) -> np.ndarray:
    """`booster.predict(design, num_threads=1)`, through LightGBM's C API directly: without
    `Booster.predict`'s per-call Python set-up, which is more than half the cost for the few
    rows a decision scores (33 µs against 76 µs for five rows here)."""
    return PreparedBooster(booster).predict(design)


CONFIDENCE_LEVEL = 0.95
CONFIDENCE_METHOD = "wilson interval of the observed conversion rate in the calibration bin"


@dataclass(frozen=True)
class CalibrationTable:
    """How often validation decisions converted, by bin of predicted probability.

    The confidence of a score is the 95 % Wilson interval (Wilson 1927) of the observed
    conversion rate among validation decisions whose prediction fell in the same equal-mass
    bin: it widens where the model is miscalibrated or has seen little data.

    >>> table = CalibrationTable.fit(np.array([0, 1, 0, 1]), np.array([.1, .2, .3, .9]), bins=2)
    >>> low, high = table.interval(np.array([0.15, 0.8]))
    >>> bool((low <= 0.5).all() and (high >= 0.5).all())
    True
    """

    upper_edges: tuple[float, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    _arrays: tuple[np.ndarray, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:  # arrays once, not per request
        # The bins' (low, high), and once more the last bin's: where `searchsorted` puts what
        # lies past the last edge (only NaN: the last edge is 1), so no clipping per request.
        bounds = np.array([(*self.low, self.low[-1]), (*self.high, self.high[-1])])
        object.__setattr__(self, "_arrays", (np.asarray(self.upper_edges), bounds))

    @classmethod
    def fit(cls, y: np.ndarray, p: np.ndarray, bins: int = 20) -> CalibrationTable:
        order = np.argsort(p, kind="stable")
        chunks = [c for c in np.array_split(order, bins) if len(c)]
        positives = np.array([y[c].sum() for c in chunks])
        counts = np.array([len(c) for c in chunks])
        low, high = proportion_confint(positives, counts, 1 - CONFIDENCE_LEVEL, method="wilson")
        edges = [float(p[c].max()) for c in chunks]
        edges[-1] = 1.0
        return cls(tuple(edges), tuple(map(float, low)), tuple(map(float, high)))

    def to_dict(self) -> dict[str, list[float]]:
        return {
            "upper_edges": list(self.upper_edges),
            "low": list(self.low),
            "high": list(self.high),
        }

    def interval(self, p: np.ndarray) -> np.ndarray:
        """The interval of each probability in `p`: a (2, n) array, its lows and highs."""
        edges, bounds = self._arrays
        return bounds.take(edges.searchsorted(p), axis=1)


@dataclass
class ScoringModel:
    conversion: lgb.Booster
    order_value: lgb.Booster
    action_ids: tuple[str, ...]
    contract_version: str
    calibration: CalibrationTable
    _boosters: tuple[PreparedBooster, PreparedBooster] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        self._boosters = (PreparedBooster(self.conversion), PreparedBooster(self.order_value))
        columns = self._boosters[0].columns
        if self._boosters[1].columns != columns:
            raise ValueError("the conversion and order-value models take different columns")
        # One candidate's design row and both models' answers for a decision's candidates,
        # allocated once with pointers to them (taking an array's address costs 1 µs).
        self._row = np.empty(columns, dtype=np.float64)
        self._row_pointer = ctypes.c_void_p(self._row.ctypes.data)
        self._answers = np.empty(2 * ROW_BY_ROW_MAX, dtype=np.float64)
        answers = self._answers.ctypes.data
        self._answer_pointers = tuple(
            ctypes.c_void_p(answers + i * _DOUBLE) for i in range(len(self._answers))
        )
        self._lock = threading.Lock()  # the buffers: one decision at a time

    def predict(self, design: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Conversion probability and order value given conversion, one per design row.

        Single-threaded: serving replicas share two cores, and OpenMP's default of all cores
        costs more in thread start-up than a few rows gain.
        """
        conversion, order_value = self._boosters
        data = conversion.checked(design)
        rows = len(data)
        out = np.empty((2, rows), dtype=np.float64)  # both models' answers, one allocation
        address, target = data.ctypes.data, out.ctypes.data
        conversion.predict_into(address, rows, target)
        order_value.predict_into(address, rows, target + rows * _DOUBLE)
        probability, value = out
        return probability, np.maximum(value, 0.0, out=value)

    def predict_candidates(
        self, features: np.ndarray, codes: Sequence[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """`predict(design_matrix(features, codes))` for one feature row and at most
        `ROW_BY_ROW_MAX` action codes: the row is written once into a buffer, each code in
        its last column, and both models predict it there (the design matrix, the two
        arrays' addresses and the matrix calls' set-up are not needed)."""
        conversion, order_value = self._boosters
        rows = len(codes)
        if features.shape != (conversion.columns - 1,) or rows > ROW_BY_ROW_MAX:
            raise ValueError(
                f"expected {conversion.columns - 1} features and at most {ROW_BY_ROW_MAX} "
                f"codes; got {features.shape} and {rows}"
            )
        row, pointer, answers = self._row, self._row_pointer, self._answer_pointers
        with self._lock:
            row[:-1] = features
            # One model's rows after the other's: each model's trees stay in the cache for
            # its rows (interleaved, the two evict each other).
            conversion.predict_codes(row, pointer, codes, answers)
            order_value.predict_codes(row, pointer, codes, answers[rows:])
            out = self._answers[: 2 * rows].copy()
        probability, value = out[:rows], out[rows:]
        return probability, np.maximum(value, 0.0, out=value)

    def save_companions(self, directory: Path) -> Path:
        """Write what MLflow's LightGBM flavour does not carry: the order-value booster and
        the metadata. The conversion booster is the registered MLflow model itself."""
        directory.mkdir(parents=True, exist_ok=True)
        self.order_value.save_model(directory / ORDER_VALUE_FILE)
        metadata = {
            "action_ids": list(self.action_ids),
            "contract_version": self.contract_version,
            "calibration": self.calibration.to_dict(),
        }
        (directory / METADATA_FILE).write_text(json.dumps(metadata))
        return directory

    @classmethod
    def from_companions(cls, conversion: lgb.Booster, directory: Path) -> ScoringModel:
        metadata = json.loads((directory / METADATA_FILE).read_text())
        return cls(
            conversion=conversion,
            order_value=lgb.Booster(model_file=str(directory / ORDER_VALUE_FILE)),
            action_ids=tuple(metadata["action_ids"]),
            contract_version=metadata["contract_version"],
            calibration=CalibrationTable(**metadata["calibration"]),
        )
