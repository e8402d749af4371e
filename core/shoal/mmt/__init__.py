"""Many Model Training and Many Model Inference: one model per partition, on DPF.

Follows the reference product's ``snowflake.ml.modeling.distributors.many_model`` API; see
docs/mmt.md. Runs on the driver (the classes) and on partition workers (the functions they
wrap).

The serde classes the reference exports here (``PickleSerde``, ``TorchSerde``, ``XGBoostSerde``,
``LightGBMSerde``) are contributions of the ``serdes`` plugin: they are looked up through the
plugin system when first used, so this package imports no plugin module, and a blocked plugin's
classes are an error that says so.
"""

from typing import Any

from shoal.mmt.inference import ManyModelInference
from shoal.mmt.training import ManyModelRun, ManyModelTraining
from shoal.serde import ModelSerde

#: the reference's serde class names, and the model serde each is
SERDE_CLASSES = {
    "PickleSerde": "pickle",
    "TorchSerde": "torch",
    "XGBoostSerde": "xgboost",
    "LightGBMSerde": "lightgbm",
}

__all__ = [
    "LightGBMSerde",
    "ManyModelInference",
    "ManyModelRun",
    "ManyModelTraining",
    "ModelSerde",
    "PickleSerde",
    "TorchSerde",
    "XGBoostSerde",
]


def __getattr__(name: str) -> Any:
    """``shoal.mmt.PickleSerde`` and its kin: the class of the model serde of that name."""
    if name not in SERDE_CLASSES:
        raise AttributeError(f"module 'shoal.mmt' has no attribute {name!r}")
    from shoal import hooks
    from shoal.errors import ShoalError

    try:
        return hooks.get_model_serde(SERDE_CLASSES[name]).factory
    except ShoalError as exc:
        raise AttributeError(
            f"shoal.mmt.{name} is the model serde {SERDE_CLASSES[name]!r}, which no plugin provides "
            f"here: {exc}"
        ) from exc
