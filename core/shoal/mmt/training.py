"""Many Model Training: one model per partition, as a DPF whose function returns the model.

.. code-block:: python

    from shoal.mmt import ManyModelTraining

    def train(data, context):
        frame = data.to_pandas()
        return LinearRegression().fit(frame[["x"]], frame["y"])

    run = ManyModelTraining(train, "models").run(partition_by="STORE", dataframe=sales, run_id="v1")
    run.wait()
    model = run.get_model("17")                  # or 17: every key partition_details yields

Each model is saved with the run's serde at ``@{stage}/{run_id}/{partition_id}/{serde.filename}``
(through the partition's artifacts, so exactly once, with the DPF's retries, logs, restore and
resume). :meth:`ManyModelTraining.from_estimator` trains one model per partition with an
estimator plugin and no training function at all.

Runs on the driver; :class:`TrainAndSave` runs on the partition workers.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shoal.dpf import checks, layout
from shoal.dpf.definition import ManyModelSection, read_definition
from shoal.dpf.dpf import DPF
from shoal.dpf.run import DPFRun
from shoal.errors import PermanentPartitionError
from shoal.mmt.serde_ref import SerdeRef, resolve
from shoal.serde import ModelSerde
from shoal.stages import get_stage

#: The key of the many-model section in a run's definition (``_shoal/run.json``):
#: :attr:`shoal.dpf.definition.RunDefinition.many_model`.
MMT_KEY = "many_model"


@dataclass
class TrainAndSave:
    """The partition function of a training run: call the user's ``train_func`` and save what it
    returns with ``serde`` as the partition's ``serde.filename``. Runs on the partition worker."""

    train_func: Callable[[Any, Any], Any]
    serde: ModelSerde

    @property
    def user_function(self) -> Callable[..., Any]:
        return self.train_func

    def __call__(self, data: Any, context: Any) -> None:
        model = self.train_func(data, context)
        if model is None:
            raise PermanentPartitionError(
                f"train_func {getattr(self.train_func, '__qualname__', self.train_func)!r} returned None for "
                f"partition {context.partition_id!r}; it must return the trained model"
            )
        try:
            context.upload_to_stage(model, self.serde.filename, write_function=self.serde.write)
        except Exception as exc:  # the model cannot be saved: running the partition again cannot help
            raise PermanentPartitionError(
                f"the model train_func returned for partition {context.partition_id!r} (a "
                f"{type(model).__module__}.{type(model).__qualname__}) cannot be saved with "
                f"{type(self.serde).__name__}: {type(exc).__name__}: {exc}. Return an object that serde "
                f"can write, or pass ManyModelTraining(serde=...) for this kind of model."
            ) from exc


class ManyModelRun(DPFRun):
    """A training run: a :class:`~shoal.dpf.DPFRun` whose partitions each saved one model."""

    _serde: ModelSerde | None = None

    @classmethod
    def restore_from(cls, run_id: str, stage_name: str) -> ManyModelRun:
        """The training run ``run_id`` on stage ``stage_name``, from any process."""
        run = super().restore_from(run_id, stage_name)
        assert isinstance(run, ManyModelRun)
        run._section()  # a plain DPF run is not a training run: say so now
        return run

    def _section(self) -> ManyModelSection:
        definition = self._definition()
        section = definition.many_model if definition is not None else None
        if section is None or section.kind != "training":
            raise ValueError(
                f"Run {self.run_id!r} on @{self._stage.name} is not a many-model training run (it was "
                f"started with DPF, or is an inference run); open it with DPFRun.restore_from"
            )
        return section

    @property
    def serde_ref(self) -> SerdeRef:
        return self._section().serde

    @property
    def serde(self) -> ModelSerde:
        """The serde the models were saved with (read back from the run's definition)."""
        if self._serde is None:
            self._serde = self.serde_ref.load()
        return self._serde

    def partition_key(self, key: object) -> str:
        """The partition id of ``key``: an id, or a value whose ``str`` is one (``17`` for ``"17"``)."""
        ids = [item.partition_id for item in self._partition_inputs()]
        known = set(ids)
        for candidate in (key, str(key)):
            if isinstance(candidate, str) and candidate in known:
                return candidate
        shown = ", ".join(repr(i) for i in ids[:10]) + (", ..." if len(ids) > 10 else "")
        raise KeyError(f"Run {self.run_id!r} has no partition {key!r}; its partitions are: {shown}")

    def _folder(self, partition_id: str) -> str:
        return next(p.folder for p in self._partition_inputs() if p.partition_id == partition_id)

    def model_path(self, key: object) -> str:
        """Where the model of partition ``key`` is, on the run's stage (``run_id/folder/file``)."""
        folder = self._folder(self.partition_key(key))
        return f"{layout.artifact_dir(self.run_id, folder)}/{self.serde_ref.filename}"

    def get_model(self, partition_id: object) -> Any:
        """The model trained for ``partition_id``, read with the run's serde."""
        path = self.model_path(partition_id)
        if not self._stage.exists(path):
            pid = self.partition_key(partition_id)
            detail = self.partition_details[pid]
            why = f": {detail.error}" if detail.error else ""
            log_path = f"{layout.artifact_dir(self.run_id, self._folder(pid))}/{layout.LOG_FILE}"
            raise LookupError(
                f"Partition {pid!r} of run {self.run_id!r} has no model (status {detail.status.value}{why}). "
                f"Its log: @{self._stage.name}/{log_path}"
            )
        return read_model(self._stage, path, self.serde)

    def models(self) -> Any:
        """The trained models as a pandas DataFrame: ``partition_id``, ``path`` (``@stage/...``),
        ``size`` (bytes) and ``serde``, one row per partition that has a model."""
        import pandas as pd

        ref = self.serde_ref
        rows = []
        for item in self._partition_inputs():
            path = f"{layout.artifact_dir(self.run_id, item.folder)}/{ref.filename}"
            size = _size(self._stage, path)
            if size is not None:
                rows.append(
                    {
                        "partition_id": item.partition_id,
                        "path": f"@{self._stage.name}/{path}",
                        "size": size,
                        "serde": ref.label,
                    }
                )
        return pd.DataFrame(rows, columns=["partition_id", "path", "size", "serde"])


def read_model(stage: Any, path: str, serde: ModelSerde) -> Any:
    """Read the model file at ``path`` of ``stage`` with ``serde`` (in place when the stage is a
    local folder, else through a temporary copy with the serde's file name)."""
    local = stage.backend.local_path(path)
    if local is not None and os.path.isfile(local):
        return serde.read(local)
    with tempfile.TemporaryDirectory(prefix="shoal-model-") as tmp:
        copy = os.path.join(tmp, os.path.basename(path))
        with open(copy, "wb") as handle:
            handle.write(stage.read_bytes(path))
        return serde.read(copy)


def _size(stage: Any, path: str) -> int | None:
    local = stage.backend.local_path(path)
    if local is not None:
        try:
            return os.path.getsize(local)
        except OSError:
            return None
    return len(stage.read_bytes(path)) if stage.exists(path) else None


class ManyModelTraining(DPF):
    """``train_func(data_connector, context)`` per partition returns the partition's model, which
    is saved with ``serde`` (default :class:`~shoal.mmt.PickleSerde`). ``run`` and
    ``run_from_stage`` take DPF's arguments and return a :class:`ManyModelRun`."""

    run_class = ManyModelRun

    def __init__(
        self,
        train_func: Callable[[Any, Any], Any],
        stage_name: str,
        serde: ModelSerde | str | None = None,
        *,
        compute_pool: str | None = None,
    ) -> None:
        if not callable(train_func):
            raise TypeError(
                f"ManyModelTraining needs train_func(data_connector, context) -> model, got "
                f"{type(train_func).__name__}"
            )
        checks.check_signature(train_func, 2, "train_func(data_connector, context)")
        self.serde, self.serde_ref = resolve(serde)
        self.train_func = train_func
        super().__init__(TrainAndSave(train_func, self.serde), stage_name, compute_pool=compute_pool)

    def _many_model_section(self) -> ManyModelSection:
        return ManyModelSection(kind="training", serde=self.serde_ref)

    def run(self, **kwargs: Any) -> ManyModelRun:
        """SQL mode, as :meth:`shoal.dpf.DPF.run`."""
        run = super().run(**kwargs)
        assert isinstance(run, ManyModelRun)
        return run

    def run_from_stage(self, **kwargs: Any) -> ManyModelRun:
        """Stage mode, as :meth:`shoal.dpf.DPF.run_from_stage`."""
        run = super().run_from_stage(**kwargs)
        assert isinstance(run, ManyModelRun)
        return run

    @staticmethod
    def restore_from(run_id: str, stage_name: str) -> ManyModelRun:
        """The training run ``run_id`` on ``stage_name`` (the docs use both spellings)."""
        return ManyModelRun.restore_from(run_id, stage_name)

    @classmethod
    def from_estimator(
        cls,
        estimator: str,
        stage_name: str,
        *,
        label_col: str,
        input_cols: list[str] | None = None,
        serde: ModelSerde | str | None = None,
        compute_pool: str | None = None,
        **options: Any,
    ) -> ManyModelTraining:
        """One model per partition with the estimator plugin ``estimator`` (``"xgboost"``,
        ``"lightgbm"``, or any installed trainer): ``options`` go to its factory, as with
        :func:`shoal.train.fit`; models are saved with the estimator's own serde (native
        formats for XGBoost and LightGBM) unless ``serde`` is given.

        The plugin is looked up, and ``options`` checked by building it once, here, before anything
        runs."""
        from shoal import hooks
        from shoal.extras import require
        from shoal.mmt.estimators import EstimatorPerPartition

        spec = hooks.get_estimator(estimator)
        require(spec.frameworks, f"the {spec.name!r} estimator")
        trainer = EstimatorPerPartition(
            spec.name, label_col=label_col, input_cols=input_cols, options=options
        )
        trainer.check()
        return cls(trainer, stage_name, serde=serde or spec.model_serde, compute_pool=compute_pool)


def training_section(stage_name: str, run_id: str) -> tuple[Any, ManyModelSection]:
    """The stage and many-model section of the training run ``run_id``; ``ValueError`` (before
    anything runs) when there is no such training run."""
    stage = get_stage(stage_name)
    definition = read_definition(stage, run_id)
    section = definition.many_model if definition is not None else None
    if section is None or section.kind != "training":
        what = "no run" if definition is None else "a run that is not many-model training"
        raise ValueError(
            f"training_run_id {run_id!r}: @{stage.name} has {what} of that id. Pass the run_id of a "
            f"ManyModelTraining run on the same stage."
        )
    return stage, section
