"""``AveragingEnsemble``: the model ``shoal.train.fit("histgb", ...)`` returns.

It holds one fitted scikit-learn model per training worker (``members``, by rank) and predicts
on the caller's side: the mean of the members' predictions (regression), or the mean of their
``predict_proba`` and its arg-max (classification). Imports numpy and pandas only when used.
"""

from __future__ import annotations

from typing import Any


class AveragingEnsemble:
    """A bagging ensemble of fitted scikit-learn models trained on disjoint shards."""

    def __init__(self, members: list[Any], *, task: str = "regression", label_col: str | None = None) -> None:
        if not members:
            raise ValueError("an AveragingEnsemble needs at least one member")
        self.members = list(members)
        self.task = task
        self.label_col = label_col
        #: the feature columns, in the order the members were fitted with
        self.input_cols: list[str] = [str(c) for c in members[0].feature_names_in_]

    def __len__(self) -> int:
        return len(self.members)

    def __repr__(self) -> str:
        kind = type(self.members[0]).__name__
        return f"AveragingEnsemble({len(self)} x {kind}, task={self.task!r}, label_col={self.label_col!r})"

    @property
    def classes_(self) -> Any:
        """Classification: every class any member saw, sorted."""
        import numpy as np

        self._require_classifier("classes_")
        return np.unique(np.concatenate([np.asarray(m.classes_) for m in self.members]))

    def predict(self, data: Any) -> Any:
        """Predictions for ``data``: a pandas/Polars DataFrame, a shoal DataConnector or a 2-D array."""
        import numpy as np

        frame = self._frame(data)
        if self.task != "classification":
            return np.mean([m.predict(frame) for m in self.members], axis=0)
        return self.classes_[np.argmax(self._proba(frame), axis=1)]

    def predict_proba(self, data: Any) -> Any:
        """Classification: the members' class probabilities, averaged (columns follow ``classes_``)."""
        self._require_classifier("predict_proba")
        return self._proba(self._frame(data))

    # -- helpers ---------------------------------------------------------------------------

    def _proba(self, frame: Any) -> Any:
        import numpy as np

        classes = self.classes_
        total = np.zeros((len(frame), len(classes)))
        for member in self.members:  # a member may have seen only some of the classes
            total[:, np.searchsorted(classes, member.classes_)] += member.predict_proba(frame)
        return total / len(self.members)

    def _require_classifier(self, what: str) -> None:
        if self.task != "classification":
            raise AttributeError(f"{what} is only defined for task='classification' (this is {self.task!r})")

    def _frame(self, data: Any) -> Any:
        """``data`` as a pandas DataFrame holding the members' feature columns, in order."""
        import numpy as np
        import pandas as pd

        if not isinstance(data, pd.DataFrame) and hasattr(data, "to_pandas"):
            data = data.to_pandas()  # a shoal DataConnector, a Polars frame, an Arrow table
        if isinstance(data, pd.DataFrame):
            missing = [c for c in self.input_cols if c not in data.columns]
            if missing:
                raise ValueError(
                    f"predict: the data lacks the column(s) {missing} the ensemble was trained on"
                )
            return data[self.input_cols]
        array = np.asarray(data)
        if array.ndim != 2 or array.shape[1] != len(self.input_cols):
            raise ValueError(
                f"predict: expected a 2-D array with {len(self.input_cols)} column(s) "
                f"({', '.join(self.input_cols)}), got shape {array.shape}"
            )
        return pd.DataFrame(array, columns=self.input_cols)
