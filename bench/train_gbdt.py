"""Benchmark: XGBoost and LightGBM on N x 50 rows (default 1,000,000) with 2 nodes.

    .venv/bin/python bench/train_gbdt.py [--rows 1000000] [--rounds 100] [--skip-ray-train]
                                         [--ray-report-every-round] [--source stage|memory]

``--source stage`` (the default): the training rows are written first as 4 parquet files on a
stage (a folder here), and every contender reads them, loading counted: shoal's ranks each read
their own row groups (``ShardedDataConnector.from_sources``), the single process reads all the
files, Ray Train reads them with ``ray.data.read_parquet``. ``--source memory``: everyone gets
the pandas frame, as the reference's users pass it.

A synthetic regression set (numpy, fixed seed, a nonlinear target plus noise; 90% train, 10%
held out for the test RMSE) is trained with the same hyper-parameters everywhere (``--rounds``
trees, hist, XGBoost ``max_depth=6`` / LightGBM ``num_leaves=63``, learning rate 0.1), by:

* shoal: ``XGBEstimator`` / ``LightGBMEstimator`` with 2 workers x 1 CPU on a 2-node local
  pool of 1 CPU per node; the time is ``fit`` on the driver (job submission, shipping the
  data, starting the workers, training, getting the booster back);
* single process: plain ``xgboost.train`` / ``lightgbm.train`` in this process with the same
  total threads (2);
* two plain processes: each reads its half and trains with 1 thread through the framework's own
  collective (XGBoost's ``RabitTracker``, LightGBM's machine list), no Ray and no shoal: what
  data-parallel training costs on this machine whatever runs it (XGBoost's allreduce of every
  level's histograms, both processes on the same 2 cores), the floor for shoal's time;
* Ray Train: ``XGBoostTrainer`` / ``LightGBMTrainer`` (Ray Train v2, ``train_loop_per_worker``
  style) with 2 workers x 1 CPU on the same pool's Ray cluster; the time includes
  ``ray.data.from_pandas`` and getting the booster from the checkpoint. By default every worker
  calls ``ray.train.report`` once, after training, rank 0 with the booster as its checkpoint.
  ``--ray-report-every-round`` uses the documented ``RayTrainReportCallback`` instead, which
  reports after every round: Ray Train v2 keeps one pending report per worker and its
  controller collects them every ``RAY_TRAIN_HEALTH_CHECK_INTERVAL_S`` (2 s), so each round
  then costs about 2 s whatever the data size.

Each figure is one run. Every run starts its own workers; shoal's pool is readied first by one
empty job (a new pool starts its service, node agents and warm interpreters in the background:
the first job on it waits for them, and that time is printed on its own). Prints seconds, the test
RMSE and peak memory per method, and the ratios shoal / single process, shoal / two plain
processes and shoal / Ray Train per framework. Peak memory is sampled every 0.1 s (psutil): the
caller's RSS above what it held before the fit (the bench process, which also made the data),
and each training worker's process (Ray actors on this machine, found by a process scan once a
second) above its RSS when first seen, next to the size of a rank's shard as float32 and a fresh
interpreter's RSS after a rank's imports. Runs in its own temporary SHOAL_HOME
and stops everything it started.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

POOL = "BENCHGBDT"
FEATURES = 50
LABEL = "Y"
NOISE = 0.1
SEED = 20240607


def synthetic_rows(rows: int, seed: int) -> Any:
    """``rows`` rows of the regression: 50 uniform features, a nonlinear target of 10 of them plus
    noise, as a pandas frame (features X0..X49, label Y)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, size=(rows, FEATURES)).astype(np.float32)
    y = (
        np.sin(np.pi * x[:, 0] * x[:, 1])
        + 2.0 * (x[:, 2] - 0.5) ** 2
        + np.maximum(x[:, 3] + x[:, 4], 0.0)
        + 0.5 * x[:, 5] * x[:, 6] * x[:, 7]
        + np.where(x[:, 8] > 0.2, 1.0, -0.5) * x[:, 9]
        + NOISE * rng.standard_normal(rows)
    ).astype(np.float32)
    frame = pd.DataFrame(x, columns=[f"X{i}" for i in range(FEATURES)])
    frame[LABEL] = y
    return frame


def make_data(rows: int) -> tuple[Any, Any, list[str]]:
    """(train frame, test frame, feature names): 90% / 10% of :func:`synthetic_rows`."""
    frame = synthetic_rows(rows, SEED)
    cut = rows - rows // 10
    names = [f"X{i}" for i in range(FEATURES)]
    return frame.iloc[:cut].reset_index(drop=True), frame.iloc[cut:].reset_index(drop=True), names


def rmse(predicted: Any, actual: Any) -> float:
    return float(np.sqrt(np.mean((np.asarray(predicted, dtype=np.float64) - np.asarray(actual)) ** 2)))


class PeakMemory:
    """Peak RSS, sampled every 0.1 s while in use: this process (above its RSS at the start) and
    every process whose command line names ``workers`` (above its RSS when first seen)."""

    def __init__(self, workers: str | None = None) -> None:
        import psutil

        self.me = psutil.Process()
        self.workers = workers
        self.start_rss = self.me.memory_info().rss
        self.caller_peak = 0
        self.worker_base: dict[int, int] = {}
        self.worker_peak: dict[int, int] = {}
        self._procs: dict[int, Any] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _find_workers(self) -> None:
        """Look for new worker processes (a full scan: once a second, as it costs CPU)."""
        import psutil

        for proc in psutil.process_iter(["pid", "cmdline"]):
            try:
                if proc.pid not in self._procs and self.workers in " ".join(proc.info["cmdline"] or []):
                    self._procs[proc.pid] = proc
            except psutil.Error:
                continue

    def _sample(self) -> None:
        import psutil

        self.caller_peak = max(self.caller_peak, self.me.memory_info().rss - self.start_rss)
        for pid, proc in list(self._procs.items()):
            try:
                rss = proc.memory_info().rss
            except psutil.Error:
                del self._procs[pid]
                continue
            self.worker_base.setdefault(pid, rss)
            self.worker_peak[pid] = max(self.worker_peak.get(pid, 0), rss)

    def _run(self) -> None:
        ticks = 0
        while not self._stop.wait(0.1):
            if self.workers and ticks % 10 == 0:
                self._find_workers()
            self._sample()
            ticks += 1

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def describe(self) -> str:
        text = f"caller +{self.caller_peak / 2**20:.0f} MB"
        for pid, peak in sorted(self.worker_peak.items()):
            text += (
                f"; rank pid {pid} {peak / 2**20:.0f} MB (+{(peak - self.worker_base[pid]) / 2**20:.0f} MB)"
            )
        return text


def import_baseline_mb(framework: str) -> float:
    """RSS (MB) of a fresh interpreter that imports what a training rank imports, and no data:
    what a rank's peak is compared with."""
    import subprocess
    import sys

    code = (  # with scikit-learn hidden while the framework imports, as a rank's preload does
        f"import sys; sys.modules['sklearn'] = None; import {framework}; del sys.modules['sklearn']; "
        f"import ray, pyarrow.parquet, numpy, shoal.runtime.train_worker, "
        f"shoal.plugins.{framework}.backend, psutil; print(psutil.Process().memory_info().rss)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(done.stdout.split()[-1]) / 2**20


def write_stage_files(train: Any, folder: Path, parts: int = 4) -> list[str]:
    """The training rows as ``parts`` parquet files (row groups of 65,536 rows) in ``folder``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    paths, size = [], -(-len(train) // parts)
    for index in range(parts):
        table = pa.Table.from_pandas(train.iloc[index * size : (index + 1) * size], preserve_index=False)
        path = folder / f"part{index}.parquet"
        pq.write_table(table, path, row_group_size=65536)
        paths.append(str(path))
    return paths


def load(train: Any, names: list[str]) -> tuple[Any, Any]:
    """Single process: features (float32) and label, from the frame or read from the files."""
    if not isinstance(train, list):
        return train[names].to_numpy(), train[LABEL].to_numpy()
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.concat_tables([pq.read_table(path) for path in train])
    features = np.column_stack([table.column(n).to_numpy() for n in names]).astype(np.float32, copy=False)
    return features, table.column(LABEL).to_numpy()


def xgb_params(threads: int) -> dict[str, Any]:
    return {
        "objective": "reg:squarederror",
        "tree_method": "hist",
        "max_depth": 6,
        "eta": 0.1,
        "nthread": threads,
    }


def lgb_params(threads: int) -> dict[str, Any]:
    return {
        "objective": "regression",
        "num_leaves": 63,
        "learning_rate": 0.1,
        "num_threads": threads,
        "verbosity": -1,
    }


# -- single process -------------------------------------------------------------------------


def single_xgboost(train: Any, test: Any, names: list[str], rounds: int) -> tuple[float, float, str]:
    """``train``: the frame, or the parquet files' paths (read here, counted)."""
    import xgboost

    with PeakMemory() as memory:
        started = time.monotonic()
        features, label = load(train, names)
        dtrain = xgboost.QuantileDMatrix(features, label=label)
        del features
        booster = xgboost.train(xgb_params(2), dtrain, num_boost_round=rounds)
        seconds = time.monotonic() - started
    return (
        seconds,
        rmse(booster.predict(xgboost.DMatrix(test[names].to_numpy())), test[LABEL]),
        memory.describe(),
    )


def single_lightgbm(train: Any, test: Any, names: list[str], rounds: int) -> tuple[float, float, str]:
    import lightgbm

    with PeakMemory() as memory:
        started = time.monotonic()
        features, label = load(train, names)
        dataset = lightgbm.Dataset(features, label=label, feature_name=names)
        booster = lightgbm.train(lgb_params(2), dataset, num_boost_round=rounds)
        seconds = time.monotonic() - started
    return seconds, rmse(booster.predict(test[names].to_numpy()), test[LABEL]), memory.describe()


# -- two plain processes, the framework's own collective --------------------------------------


def _collective_rank(framework: str, rank: int, part: Any, names: list[str], rounds: int, args: Any) -> Any:
    """One of two plain processes: read its half (files, or the frame's rows it was given), train
    with 1 thread in the framework's own collective; rank 0 returns the model as bytes."""
    if isinstance(part, list):  # its files
        features, label = load(part, names)
    else:
        features, label = part[names].to_numpy(), part[LABEL].to_numpy()
    if framework == "xgboost":
        import xgboost
        from xgboost.collective import CommunicatorContext

        with CommunicatorContext(**args, dmlc_task_id=f"{rank:06d}"):
            dtrain = xgboost.QuantileDMatrix(features, label=label, nthread=1)
            booster = xgboost.train(xgb_params(1), dtrain, num_boost_round=rounds)
        return bytes(booster.save_raw("ubj")) if rank == 0 else None
    import lightgbm

    machines, ports = args
    params = {
        **lgb_params(1),
        "tree_learner": "data",
        "pre_partition": True,
        "num_machines": 2,
        "machines": machines,
        "local_listen_port": ports[rank],
        "force_row_wise": True,  # as shoal's 1-thread ranks do (histogram_layout): the faster floor
    }
    lgb_booster = lightgbm.train(params, lightgbm.Dataset(features, label=label), num_boost_round=rounds)
    return lgb_booster.model_to_string().encode() if rank == 0 else None


def two_processes(
    framework: str, train: Any, test: Any, names: list[str], rounds: int
) -> tuple[float, float, str]:
    """The floor a distributed run pays on this machine whatever runs it: two plain processes
    (spawned, no Ray, no shoal), each training on its half with 1 thread through the framework's
    own collective (XGBoost's RabitTracker, LightGBM's machine list). Process start, imports and
    loading are counted, as they are for shoal's ranks."""
    import multiprocessing
    import socket
    from concurrent.futures import ProcessPoolExecutor

    parts: list[Any] = (
        [train[: len(train) // 2], train[len(train) // 2 :]]
        if isinstance(train, list)
        else [train.iloc[: len(train) // 2], train.iloc[len(train) // 2 :]]
    )
    started = time.monotonic()
    tracker: Any = None
    if framework == "xgboost":
        from xgboost.tracker import RabitTracker

        tracker = RabitTracker(n_workers=2, host_ip="127.0.0.1", sortby="task")
        tracker.start()
        args: Any = tracker.worker_args()
    else:
        sockets = [socket.socket() for _ in range(2)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        ports = [sock.getsockname()[1] for sock in sockets]
        for sock in sockets:
            sock.close()
        args = (",".join(f"127.0.0.1:{port}" for port in ports), ports)
    with (
        PeakMemory() as memory,
        ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool,
    ):
        futures = [
            pool.submit(_collective_rank, framework, rank, parts[rank], names, rounds, args)
            for rank in range(2)
        ]
        model = futures[0].result(timeout=900)
        futures[1].result(timeout=60)
    seconds = time.monotonic() - started
    if tracker is not None:
        tracker.free()
    if framework == "xgboost":
        import xgboost

        booster = xgboost.Booster(model_file=bytearray(model))
        predicted = booster.predict(xgboost.DMatrix(test[names].to_numpy()))
    else:
        import lightgbm

        predicted = lightgbm.Booster(model_str=model.decode()).predict(test[names].to_numpy())
    return seconds, rmse(predicted, test[LABEL]), memory.describe()


# -- shoal ----------------------------------------------------------------------------------


def _warm_up() -> int:
    """The empty job that readies a new pool before the timed fits."""
    return 1


def shoal_fit(
    framework: str, train: Any, test: Any, names: list[str], rounds: int
) -> tuple[float, float, str]:
    """Fit shoal's estimator for ``framework`` with 2 workers x 1 CPU; (seconds, test RMSE, memory).
    ``train``: the frame, or the parquet files' paths (each rank reads its row groups)."""
    if framework == "xgboost":
        from shoal.plugins.xgboost import XGBEstimator as Estimator
        from shoal.plugins.xgboost import XGBScalingConfig as Scaling

        params = {k: v for k, v in xgb_params(1).items() if k not in ("objective", "nthread")}
    else:
        from shoal.plugins.lightgbm import LightGBMEstimator as Estimator
        from shoal.plugins.lightgbm import LightGBMScalingConfig as Scaling

        params = {k: v for k, v in lgb_params(1).items() if k not in ("objective", "num_threads")}
    estimator = Estimator(
        n_estimators=rounds,
        params=params,
        scaling_config=Scaling(num_workers=2, num_cpu_per_worker=1),
        compute_pool=POOL,
    )
    from shoal.data import ShardedDataConnector

    data = ShardedDataConnector.from_sources(train) if isinstance(train, list) else train
    with PeakMemory("TrainWorker") as memory:
        started = time.monotonic()
        estimator.fit(data, names, label_col=LABEL)
        seconds = time.monotonic() - started
    return seconds, rmse(estimator.predict(test), test[LABEL]), memory.describe()


# -- Ray Train (v2, train_loop_per_worker) --------------------------------------------------


def report_booster_once(booster: Any, filename: str) -> None:
    """Every rank reports once at the end (``ray.train.report`` is a barrier); rank 0 attaches
    the booster as a checkpoint under the file name ``RayTrainReportCallback.get_model`` reads."""
    import ray.train

    if ray.train.get_context().get_world_rank() != 0:
        ray.train.report({}, checkpoint=None)
        return
    with tempfile.TemporaryDirectory() as folder:
        booster.save_model(str(Path(folder) / filename))
        ray.train.report({}, checkpoint=ray.train.Checkpoint.from_directory(folder))


def shard_arrays(shard: Any) -> tuple[Any, Any]:
    """A Ray Train worker's shard as float32 features and label (from pandas: read_parquet gives
    pyarrow-backed columns, which the frameworks do not take as they are)."""
    frame = shard.materialize().to_pandas()
    return frame.drop(columns=[LABEL]).to_numpy(dtype=np.float32), frame[LABEL].to_numpy(dtype=np.float32)


def ray_xgboost_loop(config: dict[str, Any]) -> None:
    import ray.train
    import xgboost
    from ray.train.xgboost import RayTrainReportCallback

    features, label = shard_arrays(ray.train.get_dataset_shard("train"))
    dtrain = xgboost.DMatrix(features, label=label)
    booster = xgboost.train(
        config["params"],
        dtrain,
        num_boost_round=config["rounds"],
        evals=[(dtrain, "train")] if config["every_round"] else None,
        callbacks=[RayTrainReportCallback()] if config["every_round"] else None,
    )
    if not config["every_round"]:
        report_booster_once(booster, RayTrainReportCallback.CHECKPOINT_NAME)


def ray_lightgbm_loop(config: dict[str, Any]) -> None:
    import lightgbm
    import ray.train
    from ray.train.lightgbm import RayTrainReportCallback, get_network_params

    features, label = shard_arrays(ray.train.get_dataset_shard("train"))
    params = {**config["params"], "tree_learner": "data", "pre_partition": True, **get_network_params()}
    dataset = lightgbm.Dataset(features, label=label)
    booster = lightgbm.train(
        params,
        dataset,
        num_boost_round=config["rounds"],
        valid_sets=[dataset] if config["every_round"] else None,
        valid_names=["train"] if config["every_round"] else None,
        callbacks=[RayTrainReportCallback()] if config["every_round"] else None,
    )
    if not config["every_round"]:
        report_booster_once(booster, RayTrainReportCallback.CHECKPOINT_NAME)


def ray_train(
    framework: str, train: Any, test: Any, names: list[str], rounds: int, storage: Path, every_round: bool
) -> tuple[float, float, str]:
    import ray.data
    from ray.train import RunConfig, ScalingConfig

    scaling = ScalingConfig(num_workers=2, resources_per_worker={"CPU": 1})
    run = RunConfig(name=f"gbdt-{framework}", storage_path=str(storage))
    memory = PeakMemory("TrainWorker").__enter__()  # Ray Train's workers: ray::RayTrainWorker
    started = time.monotonic()
    if isinstance(train, list):
        # read before the workers take every CPU: Ray Data's read tasks need one, and with both
        # CPUs held by the 2 workers they never run (the dataset iterator waits for ever)
        dataset = ray.data.read_parquet(train).materialize()
    else:
        dataset = ray.data.from_pandas(train)
    if framework == "xgboost":
        from ray.train.xgboost import RayTrainReportCallback, XGBoostTrainer

        trainer: Any = XGBoostTrainer(
            ray_xgboost_loop,
            train_loop_config={"params": xgb_params(1), "rounds": rounds, "every_round": every_round},
            scaling_config=scaling,
            run_config=run,
            datasets={"train": dataset},
        )
    else:
        from ray.train.lightgbm import LightGBMTrainer, RayTrainReportCallback

        trainer = LightGBMTrainer(
            ray_lightgbm_loop,
            train_loop_config={"params": lgb_params(1), "rounds": rounds, "every_round": every_round},
            scaling_config=scaling,
            run_config=run,
            datasets={"train": dataset},
        )
    result = trainer.fit()
    booster = RayTrainReportCallback.get_model(result.checkpoint)
    seconds = time.monotonic() - started
    memory.__exit__()
    if framework == "xgboost":
        import xgboost

        predicted = booster.predict(xgboost.DMatrix(test[names]))
    else:
        predicted = booster.predict(test[names])
    return seconds, rmse(predicted, test[LABEL]), memory.describe()


# -- main -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--skip-ray-train", action="store_true", help="only shoal and the single process")
    parser.add_argument(
        "--ray-report-every-round",
        action="store_true",
        help="Ray Train with the documented RayTrainReportCallback (a report per round)",
    )
    parser.add_argument("--source", choices=("stage", "memory"), default="stage")
    options = parser.parse_args()

    started = time.monotonic()
    train, test, names = make_data(options.rows)
    print(
        f"{options.rows:,} rows x {FEATURES} features ({len(train):,} train, {len(test):,} test), "
        f"{options.rounds} rounds; data made in {time.monotonic() - started:.1f} s; "
        f"noise floor RMSE {NOISE:.3f}, predicting the mean: {float(test[LABEL].std()):.3f}",
        flush=True,
    )
    results: dict[tuple[str, str], tuple[float, float, str]] = {}

    shard_mb = len(train) / 2 * len(names) * 4 / 2**20
    baselines = {framework: import_baseline_mb(framework) for framework in ("xgboost", "lightgbm")}
    print(
        f"a rank's shard is {shard_mb:.0f} MB as float32; a rank's imports alone take "
        + ", ".join(f"{mb:.0f} MB ({framework})" for framework, mb in baselines.items()),
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="shoal-bench-") as tmp:
        os.environ["SHOAL_HOME"] = str(Path(tmp) / "home")
        source: Any = train
        if options.source == "stage":
            source = write_stage_files(train, Path(tmp) / "stage_files")
            print(f"training rows written as {len(source)} parquet files", flush=True)
            del train
        # the anchors first, before any Ray process of the pool runs on this machine
        results["xgboost", "single"] = single_xgboost(source, test, names, options.rounds)
        print(f"xgboost single process: {results['xgboost', 'single']}", flush=True)
        results["lightgbm", "single"] = single_lightgbm(source, test, names, options.rounds)
        print(f"lightgbm single process: {results['lightgbm', 'single']}", flush=True)
        for framework in ("xgboost", "lightgbm"):
            results[framework, "two"] = two_processes(framework, source, test, names, options.rounds)
            print(f"{framework} two plain processes: {results[framework, 'two']}", flush=True)

        import shoal

        began = time.monotonic()
        shoal.create_compute_pool(POOL, min_nodes=2, max_nodes=2, cpus_per_node=1)
        print(f"2-node local pool (1 CPU per node) started in {time.monotonic() - began:.1f} s", flush=True)
        try:  # the pool is dropped whatever fails from here on
            began = time.monotonic()
            from shoal.jobs import JobStatus, remote

            warm_up = remote(POOL, stage_name="bench_jobs")(_warm_up)()
            if warm_up.wait(timeout=300) != JobStatus.DONE:
                raise SystemExit(f"the warm-up job on the pool did not end DONE: {warm_up.status}")
            print(
                f"a first, empty job readied the pool's service, node agents and warm interpreters in "
                f"{time.monotonic() - began:.1f} s (what the first job on a new pool waits for)",
                flush=True,
            )
            for framework in ("xgboost", "lightgbm"):
                results[framework, "shoal"] = shoal_fit(framework, source, test, names, options.rounds)
                print(f"{framework} shoal: {results[framework, 'shoal']}", flush=True)
            if not options.skip_ray_train:
                from shoal.pools.connect import connect

                connect(shoal.describe_compute_pool(POOL)["address"])
                storage = Path(tmp) / "ray_results"
                for framework in ("xgboost", "lightgbm"):
                    results[framework, "ray"] = ray_train(
                        framework,
                        source,
                        test,
                        names,
                        options.rounds,
                        storage,
                        options.ray_report_every_round,
                    )
        finally:
            shoal.drop_compute_pool(POOL)

    labels = {
        "shoal": "shoal (2 nodes x 1 CPU)",
        "single": "single process (2 threads)",
        "two": "2 plain processes, own collective",
        "ray": "Ray Train (2 x 1 CPU" + (", report per round)" if options.ray_report_every_round else ")"),
    }
    print()
    print(f"{'':<50}{'time':>10}{'test RMSE':>12}  peak memory")
    for framework in ("xgboost", "lightgbm"):
        for method in ("shoal", "single", "two", "ray"):
            if (framework, method) in results:
                seconds, error, memory = results[framework, method]
                print(f"{framework + ' ' + labels[method]:<50}{seconds:>9.2f}s{error:>12.4f}  {memory}")
    print()
    for framework in ("xgboost", "lightgbm"):
        ours = results[framework, "shoal"][0]
        line = f"{framework:<10} shoal / single {ours / results[framework, 'single'][0]:.2f}x"
        line += f", shoal / 2 plain processes {ours / results[framework, 'two'][0]:.2f}x"
        if (framework, "ray") in results:
            line += f", shoal / Ray Train {ours / results[framework, 'ray'][0]:.2f}x"
        quality = results[framework, "shoal"][1] / results[framework, "single"][1]
        line += f"; test RMSE shoal / single {quality:.3f}"
        print(line)
    print(
        "a rank's peak RSS above its imports, over its shard's float32 size: "
        + ", ".join(
            f"{framework} {max(peaks) - baselines[framework]:.0f} MB = "
            f"{(max(peaks) - baselines[framework]) / shard_mb:.2f}x"
            for framework in ("xgboost", "lightgbm")
            if (peaks := rank_peaks_mb(results[framework, "shoal"][2]))
        )
    )


def rank_peaks_mb(memory: str) -> list[float]:
    """The ranks' peak RSS (MB) out of :meth:`PeakMemory.describe`'s text."""
    import re

    return [float(mb) for mb in re.findall(r"rank pid \d+ (\d+) MB", memory)]


if __name__ == "__main__":
    main()
