"""Which reference module holds which name, and where shoal has it.

Each entry of :data:`MODULES` maps a reference module to its names; a value is
``"shoal.module:attribute"`` (imported when first used), or a stand-in from
:mod:`shoal.compat.snowflake.stubs` for what shoal does not implement. :data:`PACKAGES` are
the parent packages the names live under. :data:`OVERRIDE` lists the modules that replace the real
snowflake-ml-python's when it is installed (they would talk to a Snowflake account); every other
module of the real client is left alone.

Runs wherever the compatibility layer is installed.
"""

from __future__ import annotations

from typing import Any

from shoal.compat.snowflake.stubs import unsupported_class

D = "snowflake.ml.modeling.distributors"
DPF_ = f"{D}.distributed_partition_function"
MM = f"{D}.many_model"
PT = f"{D}.pytorch"

XGB = {
    "XGBEstimator": "shoal.plugins.xgboost:XGBEstimator",
    "XGBScalingConfig": "shoal.plugins.xgboost:XGBScalingConfig",
}
LGBM = {
    "LightGBMEstimator": "shoal.plugins.lightgbm:LightGBMEstimator",
    "LightGBMScalingConfig": "shoal.plugins.lightgbm:LightGBMScalingConfig",
}
TORCH_SCALING = {
    "PyTorchScalingConfig": "shoal.plugins.torch:PyTorchScalingConfig",
    "WorkerResourceConfig": "shoal.plugins.torch:WorkerResourceConfig",
}
TORCH_CONTEXT = {
    "Context": "shoal.plugins.torch.context:Context",
    "get_context": "shoal.plugins.torch:get_context",
}
TENSORFLOW_SERDE = unsupported_class(
    f"{MM}.TensorFlowSerde",
    "TensorFlow is not among shoal's frameworks",
    "shoal.mmt.PickleSerde, or your own ModelSerde registered through the shoal_model_serdes hook",
    methods=("write", "read"),
    attributes=("filename",),
)
SERDES: dict[str, Any] = {
    "ModelSerde": "shoal.serde:ModelSerde",
    "PickleSerde": "shoal.plugins.serdes:PickleSerde",
    "TorchSerde": "shoal.plugins.serdes:TorchSerde",
    "XGBoostSerde": "shoal.plugins.serdes:XGBoostSerde",
    "LightGBMSerde": "shoal.plugins.serdes:LightGBMSerde",
    "TensorFlowSerde": TENSORFLOW_SERDE,
}
DPF_NAMES = {
    "DPF": "shoal.dpf:DPF",
    "DPFRun": "shoal.dpf:DPFRun",
    "ExecutionOptions": "shoal.dpf:ExecutionOptions",
    "RunStatus": "shoal.dpf:RunStatus",
    "PartitionStatus": "shoal.dpf:PartitionStatus",
    "PartitionContext": "shoal.dpf:PartitionContext",
    "StageArtifactsManager": "shoal.dpf:StageArtifactsManager",
    "SinglePartitionDetails": "shoal.dpf:SinglePartitionDetails",
}
CLUSTER = {
    name: f"shoal.compat.snowflake.cluster:{name}"
    for name in (
        "scale_cluster",
        "get_nodes",
        "get_cluster_size",
        "get_num_cpus_per_node",
        "get_available_cpu",
        "get_available_gpu",
        "get_ray_dashboard_url",
    )
}
JOBS = {
    name: f"shoal.compat.snowflake.jobs:{name}"
    for name in (
        "remote",
        "submit_file",
        "submit_directory",
        "submit_from_stage",
        "list_jobs",
        "get_job",
        "delete_job",
        "MLJob",
        "JOB_STATUS",
        "JobStatus",
        "MLJobDefinition",
    )
}
TUNE = {
    name: f"shoal.tune:{name}"
    for name in (
        "Tuner",
        "TunerConfig",
        "TunerContext",
        "TunerResults",
        "get_tuner_context",
        "SamplingFunction",
        "Uniform",
        "LogUniform",
        "RandInt",
        "uniform",
        "loguniform",
        "randint",
        "search",
    )
}
TUNE_SEARCH = {
    name: f"shoal.tune.search:{name}"
    for name in ("SearchAlgorithm", "GridSearch", "RandomSearch", "BayesOpt")
}
RAY_IO_WHY = "Ray Data sources over Snowflake stages need a Snowflake account"
RAY_IO_INSTEAD = (
    "shoal.data.DataConnector over stage files (.to_ray_dataset()), or ray.data.read_* on the stage's folder"
)


def _ray_io(module: str, name: str, methods: tuple[str, ...] = ()) -> dict[str, Any]:
    return {name: unsupported_class(f"{module}.{name}", RAY_IO_WHY, RAY_IO_INSTEAD, methods=methods)}


RAY_SOURCES = "snowflake.ml.ray.datasource"

MODULES: dict[str, dict[str, Any]] = {
    D: {},
    f"{D}.xgboost": XGB,
    f"{D}.xgboost.xgboost_estimator": XGB,
    f"{D}.lightgbm": LGBM,
    f"{D}.lightgbm.lightgbm_estimator": LGBM,
    PT: {"PyTorchDistributor": "shoal.plugins.torch:PyTorchDistributor", **TORCH_SCALING, **TORCH_CONTEXT},
    f"{PT}.pytorch_trainer": {
        "PyTorchDistributor": "shoal.plugins.torch:PyTorchDistributor",
        **TORCH_SCALING,
    },
    f"{PT}.context": TORCH_CONTEXT,
    f"{PT}.scaling_config": TORCH_SCALING,
    DPF_: DPF_NAMES,
    f"{DPF_}.dpf": {"DPF": "shoal.dpf:DPF"},
    f"{DPF_}.dpf_run": {"DPFRun": "shoal.dpf:DPFRun"},
    f"{DPF_}.entities": {k: DPF_NAMES[k] for k in ("ExecutionOptions", "RunStatus", "PartitionStatus")},
    f"{DPF_}.partition_context": {"PartitionContext": "shoal.dpf:PartitionContext"},
    f"{DPF_}.stage_artifacts_manager": {"StageArtifactsManager": "shoal.dpf:StageArtifactsManager"},
    MM: {
        "ManyModelTraining": "shoal.mmt:ManyModelTraining",
        "ManyModelInference": "shoal.mmt:ManyModelInference",
        "ManyModelRun": "shoal.mmt:ManyModelRun",
        **SERDES,
    },
    f"{MM}.many_model_training": {
        "ManyModelTraining": "shoal.mmt:ManyModelTraining",
        "ManyModelRun": "shoal.mmt:ManyModelRun",
    },
    f"{MM}.many_model_inference": {"ManyModelInference": "shoal.mmt:ManyModelInference"},
    f"{MM}.utils": SERDES,
    "snowflake.ml.modeling.pytorch": {
        "PyTorchTrainer": "shoal.plugins.torch:PyTorchDistributor",
        "ScalingConfig": "shoal.plugins.torch:PyTorchScalingConfig",
        "WorkerResourceConfig": "shoal.plugins.torch:WorkerResourceConfig",
        "getContext": "shoal.plugins.torch:get_context",
        "get_context": "shoal.plugins.torch:get_context",
    },
    "snowflake.ml.modeling.tune": TUNE,
    "snowflake.ml.modeling.tune.tuner": {"Tuner": TUNE["Tuner"]},
    "snowflake.ml.modeling.tune.search": TUNE_SEARCH,
    "snowflake.ml.data": {
        "DataConnector": "shoal.data:DataConnector",
        "ShardedDataConnector": "shoal.data:ShardedDataConnector",
    },
    "snowflake.ml.data.data_connector": {"DataConnector": "shoal.data:DataConnector"},
    "snowflake.ml.data.sharded_data_connector": {"ShardedDataConnector": "shoal.data:ShardedDataConnector"},
    "snowflake.ml.jobs": JOBS,
    "snowflake.ml.runtime_cluster": CLUSTER,
    "snowflake.ml.runtime_cluster.cluster_manager": CLUSTER,
    "snowflake.ml.ray": {},
    RAY_SOURCES: {},
    "snowflake.ml.ray.datasink": {},
    "snowflake.ml.ray.datasink.table_datasink": _ray_io(
        "snowflake.ml.ray.datasink.table_datasink", "SnowflakeTableDatasink"
    ),
    f"{RAY_SOURCES}.stage_binary_file_datasource": _ray_io(
        f"{RAY_SOURCES}.stage_binary_file_datasource", "SFStageBinaryFileDataSource", ("get_read_tasks",)
    ),
    f"{RAY_SOURCES}.stage_csv_file_datasource": _ray_io(
        f"{RAY_SOURCES}.stage_csv_file_datasource", "SFStageCSVDataSource", ("get_read_tasks",)
    ),
    f"{RAY_SOURCES}.stage_image_datasource": _ray_io(
        f"{RAY_SOURCES}.stage_image_datasource", "SFStageImageDataSource", ("get_read_tasks",)
    ),
    f"{RAY_SOURCES}.stage_parquet_file_datasource": _ray_io(
        f"{RAY_SOURCES}.stage_parquet_file_datasource", "SFStageParquetDataSource", ("get_read_tasks",)
    ),
    f"{RAY_SOURCES}.stage_text_datasource": _ray_io(
        f"{RAY_SOURCES}.stage_text_datasource", "SFStageTextDataSource", ("get_read_tasks",)
    ),
}

#: parent packages that hold no names of their own but must exist for the imports above
PACKAGES = {"snowflake.ml", "snowflake.ml.modeling"}

#: modules of the real client that shoal replaces (they would reach a Snowflake account)
OVERRIDE = {
    "snowflake.ml.jobs",
    "snowflake.ml.data",
    "snowflake.ml.data.data_connector",
    "snowflake.ml.data.sharded_data_connector",
}


def is_package(name: str) -> bool:
    """Whether ``name`` has sub-modules in the table (so it needs a ``__path__``)."""
    return name in PACKAGES or any(other.startswith(name + ".") for other in MODULES)
