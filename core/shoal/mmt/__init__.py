"""Many Model Training and Many Model Inference: one model per partition, on DPF.

Follows the reference product's ``snowflake.ml.modeling.distributors.many_model`` API; see
docs/mmt.md. Runs on the driver (the classes) and on partition workers (the functions they
wrap).
"""

from shoal.mmt.inference import ManyModelInference
from shoal.mmt.training import ManyModelRun, ManyModelTraining
from shoal.plugins.serdes import LightGBMSerde, PickleSerde, TorchSerde, XGBoostSerde
from shoal.serde import ModelSerde

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
