"""Built-in plugin: model serdes ``pickle`` (default, any picklable model), ``torch``, and the
native formats ``xgboost`` (``model.json``) and ``lightgbm`` (``model.txt``).

The native serdes need no pickle to read a model back, so they are safe for model files from
elsewhere, and the files load with the frameworks' own functions anywhere
(``xgboost.Booster(model_file=...)``, ``lightgbm.Booster(model_file=...)``). The ad-hoc
attributes a user set on a model (``model.rmse = 0.3``) travel inside the file when they are
JSON values: in XGBoost's learner attributes, and in one ``shoal_model:`` line of LightGBM's
text format, which LightGBM skips.

Runs wherever a model is saved or loaded (workers and the driver). Each framework is imported
only when its serde writes or reads.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from typing import Any

import cloudpickle

from shoal.contributions import ModelSerdeSpec
from shoal.hookspecs import hookimpl
from shoal.localfiles import atomic_path, write_atomically
from shoal.serde import ModelSerde


class PickleSerde(ModelSerde):
    """Pickles the model with cloudpickle (so locally defined classes survive); file ``model.pkl``."""

    @property
    def filename(self) -> str:
        return "model.pkl"

    def write(self, model: Any, file_path: str) -> None:
        write_atomically(file_path, cloudpickle.dumps(model), durable=False)

    def read(self, file_path: str) -> Any:
        with open(file_path, "rb") as handle:
            return pickle.load(handle)


class TorchSerde(ModelSerde):
    """Saves a torch module (or state dict) with ``torch.save``; file ``model.pth``."""

    @property
    def filename(self) -> str:
        return "model.pth"

    def write(self, model: Any, file_path: str) -> None:
        import torch

        # a file object: torch names its archive after a path's file name, and a temporary
        # file's name (".shoal-tmp-...") is not one torch accepts
        with atomic_path(file_path, durable=False) as tmp, open(tmp, "wb") as handle:
            torch.save(model, handle)

    def read(self, file_path: str) -> Any:
        import torch

        return torch.load(file_path, weights_only=False)


def _jsonable(value: Any) -> Any:
    """``value`` as plain JSON data (numpy scalars and arrays included); TypeError if it is not."""
    if hasattr(value, "tolist") and callable(value.tolist):
        value = value.tolist()
    json.dumps(value)
    return value


def _adhoc_attributes(model: Any, fresh: Any, exclude: set[str]) -> dict[str, Any]:
    """The attributes a user set on ``model`` that a model read back from its file (``fresh``)
    does not have: public names (no leading or trailing ``_``, so no fitted scikit-learn state),
    JSON values only (others are left out with a warning)."""
    kept: dict[str, Any] = {}
    skipped = []
    fresh_names = set(vars(fresh)) if hasattr(fresh, "__dict__") else set()
    for name, value in vars(model).items():
        if name.startswith("_") or name.endswith("_") or name in fresh_names or name in exclude:
            continue
        try:
            kept[name] = _jsonable(value)
        except (TypeError, ValueError):
            skipped.append(name)
    if skipped:
        warnings.warn(
            f"model attribute(s) {skipped} are not JSON values and are not saved in the native model "
            f"file; use PickleSerde to keep them",
            stacklevel=3,
        )
    return kept


def _class_path(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


class XGBoostSerde(ModelSerde):
    """XGBoost's native JSON format, ``model.json``: an ``xgboost.Booster`` or one of XGBoost's
    scikit-learn models (``XGBRegressor``, ``XGBClassifier``, ...) comes back as what it was."""

    CLASS_ATTR = "shoal_class"
    ATTRS_ATTR = "shoal_attrs"

    @property
    def filename(self) -> str:
        return "model.json"

    def write(self, model: Any, file_path: str) -> None:
        import xgboost

        if not isinstance(model, (xgboost.Booster, xgboost.XGBModel)):
            raise TypeError(
                f"XGBoostSerde saves an xgboost.Booster or an XGBoost scikit-learn model, got "
                f"{type(model).__name__}; use PickleSerde for other models"
            )
        with tempfile.TemporaryDirectory(prefix="shoal-xgb-") as tmp:
            path = os.path.join(tmp, "model.json")  # XGBoost picks its format by the extension
            model.save_model(path)
            fresh = self._load(path, _class_path(model))
            exclude = set(model.get_params()) if isinstance(model, xgboost.XGBModel) else set()
            with open(path, encoding="utf-8") as handle:
                document = json.load(handle)
            attributes = document.setdefault("learner", {}).setdefault("attributes", {})
            attributes[self.CLASS_ATTR] = _class_path(model)
            attributes[self.ATTRS_ATTR] = json.dumps(_adhoc_attributes(model, fresh, exclude))
            write_atomically(file_path, json.dumps(document), durable=False)

    @staticmethod
    def _load(path: str, class_path: str) -> Any:
        import xgboost

        module, _, name = class_path.rpartition(".")
        if class_path in ("xgboost.core.Booster", "") or not module.startswith("xgboost"):
            return xgboost.Booster(model_file=path)
        cls = getattr(xgboost, name, None)
        if not (isinstance(cls, type) and issubclass(cls, xgboost.XGBModel)):
            return xgboost.Booster(model_file=path)  # only XGBoost's own classes are built by name
        model = cls()
        model.load_model(path)
        return model

    def read(self, file_path: str) -> Any:
        with open(file_path, encoding="utf-8") as handle:
            attributes = json.load(handle).get("learner", {}).get("attributes", {})
        if file_path.endswith(".json"):
            model = self._load(file_path, attributes.get(self.CLASS_ATTR, ""))
        else:  # a copy under another name: give XGBoost the extension it needs
            with tempfile.TemporaryDirectory(prefix="shoal-xgb-") as tmp:
                path = os.path.join(tmp, "model.json")
                shutil.copyfile(file_path, path)
                model = self._load(path, attributes.get(self.CLASS_ATTR, ""))
        for name, value in json.loads(attributes.get(self.ATTRS_ATTR, "{}")).items():
            setattr(model, name, value)
        return model


class LightGBMSerde(ModelSerde):
    """LightGBM's native text format, ``model.txt``; read back as a ``lightgbm.Booster`` (a
    scikit-learn ``LGBM*`` model is saved as its fitted booster: ``predict`` works the same)."""

    MARKER = "shoal_model:"

    @property
    def filename(self) -> str:
        return "model.txt"

    def write(self, model: Any, file_path: str) -> None:
        import lightgbm

        if isinstance(model, lightgbm.LGBMModel):
            booster, exclude = model.booster_, set(model.get_params())
        elif isinstance(model, lightgbm.Booster):
            booster, exclude = model, set()
        else:
            raise TypeError(
                f"LightGBMSerde saves a lightgbm.Booster or a LightGBM scikit-learn model, got "
                f"{type(model).__name__}; use PickleSerde for other models"
            )
        text = booster.model_to_string()
        fresh = lightgbm.Booster(model_str=text)
        meta = {"class": _class_path(model), "attrs": _adhoc_attributes(model, fresh, exclude)}
        line = self.MARKER + json.dumps(meta) + "\n"
        cut = text.rfind("pandas_categorical:")  # LightGBM's Python side reads that line last
        text = text[:cut] + line + text[cut:] if cut >= 0 else text + line
        write_atomically(file_path, text, durable=False)

    def read(self, file_path: str) -> Any:
        import lightgbm

        booster = lightgbm.Booster(model_file=file_path)
        with open(file_path, encoding="utf-8") as handle:
            meta = next((line[len(self.MARKER) :] for line in handle if line.startswith(self.MARKER)), "{}")
        for name, value in json.loads(meta).get("attrs", {}).items():
            setattr(booster, name, value)
        return booster


@hookimpl
def shoal_model_serdes() -> Iterator[ModelSerdeSpec]:
    yield ModelSerdeSpec(name="pickle", factory=PickleSerde, description="cloudpickle, model.pkl (default)")
    yield ModelSerdeSpec(name="torch", factory=TorchSerde, description="torch.save, model.pth")
    yield ModelSerdeSpec(
        name="xgboost", factory=XGBoostSerde, description="XGBoost's native JSON, model.json (no pickle)"
    )
    yield ModelSerdeSpec(
        name="lightgbm", factory=LightGBMSerde, description="LightGBM's native text, model.txt (no pickle)"
    )
