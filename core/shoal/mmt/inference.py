"""Many Model Inference: per partition, ``inference_func(data_connector, model, context)`` with
that partition's model from a training run loaded once.

.. code-block:: python

    from shoal.mmt import ManyModelInference

    def score(data, model, context):
        frame = data.to_pandas()
        frame["prediction"] = model.predict(frame[["x"]])
        context.upload_to_stage(frame, "predictions.parquet", write_function=lambda df, p: df.to_parquet(p))

    run = ManyModelInference(score, "models", training_run_id="v1").run(
        partition_by="STORE", dataframe=new_sales, run_id="v1_scores")
    run.wait()
    run.query_artifacts("predictions.parquet")    # one DuckDB relation over every partition's output

The training run must be on the same stage; ``partition_by`` must be the column training used
(a partition of the data with no model of that id fails, naming the partition and the run).
The serde defaults to the one the training run used.

Runs on the driver; :class:`LoadAndInfer` runs on the partition workers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shoal.dpf import checks, layout
from shoal.dpf.definition import ManyModelSection
from shoal.dpf.dpf import DPF
from shoal.dpf.folders import folder_of
from shoal.dpf.run import DPFRun
from shoal.dpf.specs import PartitionInput
from shoal.errors import PermanentPartitionError
from shoal.mmt.serde_ref import resolve
from shoal.mmt.training import read_model, training_section
from shoal.serde import ModelSerde
from shoal.stages import Stage


@dataclass
class LoadAndInfer:
    """The partition function of an inference run: load the partition's model from the training
    run, then call the user's ``inference_func``. Runs on the partition worker."""

    inference_func: Callable[[Any, Any, Any], Any]
    stage_name: str
    stage_url: str
    training_run_id: str
    serde: ModelSerde
    #: The training run's folders that are not their key's own (:func:`shoal.dpf.folders.folders_of`
    #: gave them a digest); every other key's folder is :func:`~shoal.dpf.folders.folder_of` of it.
    training_folders: dict[str, str] = field(default_factory=dict)

    @property
    def user_function(self) -> Callable[..., Any]:
        return self.inference_func

    def __call__(self, data: Any, context: Any) -> Any:
        stage = Stage(self.stage_name, self.stage_url)
        folder = self.training_folders.get(context.partition_id) or folder_of(context.partition_id)
        path = f"{layout.artifact_dir(self.training_run_id, folder)}/{self.serde.filename}"
        if not stage.exists(path):
            raise PermanentPartitionError(
                f"Partition {context.partition_id!r} has no model in training run {self.training_run_id!r} "
                f"(no @{stage.name}/{path}): it was not in the training data, or its training failed. "
                f"Partition the data by the column training used."
            )
        model = read_model(stage, path, self.serde)
        return self.inference_func(data, model, context)


class ManyModelInference(DPF):
    """``inference_func(data_connector, model, context)`` per partition, with the partition's
    model from the training run ``training_run_id`` on the same stage. ``run`` and
    ``run_from_stage`` take DPF's arguments and return a :class:`~shoal.dpf.DPFRun`."""

    def __init__(
        self,
        inference_func: Callable[[Any, Any, Any], Any],
        stage_name: str,
        training_run_id: str,
        serde: ModelSerde | str | None = None,
        *,
        compute_pool: str | None = None,
    ) -> None:
        if not callable(inference_func):
            raise TypeError(
                f"ManyModelInference needs inference_func(data_connector, model, context), got "
                f"{type(inference_func).__name__}"
            )
        checks.check_signature(inference_func, 3, "inference_func(data_connector, model, context)")
        layout.check_run_id(training_run_id)
        stage, section = training_section(stage_name, training_run_id)
        if serde is None:
            ref = section.serde
            instance = ref.load()
        else:
            instance, ref = resolve(serde)
        self.training_run_id = training_run_id
        self.serde, self.serde_ref = instance, ref
        super().__init__(
            LoadAndInfer(
                inference_func,
                stage.name,
                stage.url,
                training_run_id,
                instance,
                _own_folders(DPFRun(stage, training_run_id)._partition_inputs()),
            ),
            stage_name,
            compute_pool=compute_pool,
        )

    def _many_model_section(self) -> ManyModelSection:
        return ManyModelSection(kind="inference", serde=self.serde_ref, training_run_id=self.training_run_id)


def _own_folders(parts: list[PartitionInput]) -> dict[str, str]:
    """The partitions whose folder is not their key's own (driver)."""
    return {p.partition_id: p.folder for p in parts if p.folder != folder_of(p.partition_id)}
