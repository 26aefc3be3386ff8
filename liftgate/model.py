"""The scoring model: P(conversion | customer, action) and E[order value | conversion, ...].

Both are LightGBM boosters over the contract's features plus the action code
(`liftgate.contract.design_matrix`). Serving, replay and the validation gate all score
through `ScoringModel.predict`, so a logged decision can be recomputed exactly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np

ORDER_VALUE_FILE = "order_value.txt"
METADATA_FILE = "metadata.json"


@dataclass
class ScoringModel:
    conversion: lgb.Booster
    order_value: lgb.Booster
    action_ids: tuple[str, ...]
    contract_version: str

    def predict(self, design: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Conversion probability and order value given conversion, one per design row.

        Single-threaded: serving replicas share two cores, and OpenMP's default of all cores
        costs more in thread start-up than a few rows gain.
        """
        probability = self.conversion.predict(design, num_threads=1)
        value = np.maximum(self.order_value.predict(design, num_threads=1), 0.0)
        return probability, value

    def save_companions(self, directory: Path) -> Path:
        """Write what MLflow's LightGBM flavour does not carry: the order-value booster and
        the metadata. The conversion booster is the registered MLflow model itself."""
        directory.mkdir(parents=True, exist_ok=True)
        self.order_value.save_model(directory / ORDER_VALUE_FILE)
        metadata = {"action_ids": list(self.action_ids), "contract_version": self.contract_version}
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
        )
