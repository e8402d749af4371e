"""Hyper-parameter tuning across a pool: the reference's ``snowflake.ml.modeling.tune``, on Ray Tune.

    from shoal import tune
    from shoal.tune.search import RandomSearch

    def train_func():
        context = tune.get_tuner_context()
        params = context.get_hyper_params()
        train = context.get_dataset_map()["train"].to_pandas()
        ...
        context.report({"rmse": rmse}, model=model)

    results = tune.Tuner(
        train_func,
        {"max_depth": tune.randint(2, 8), "eta": tune.loguniform(0.01, 0.3)},
        tune.TunerConfig(metric="rmse", mode="min", search_alg=RandomSearch(), num_trials=12),
    ).run(dataset_map={"train": DataConnector.from_dataframe(frame)})
    results.best_model, results.best_result, results.results

See docs/tune.md. Runs on the driver; the trials run on the pool's nodes.
"""

from shoal.tune import search
from shoal.tune.config import ASHA, TunerConfig
from shoal.tune.context import TunerContext, get_tuner_context
from shoal.tune.results import TunerResults
from shoal.tune.search import BayesOpt, GridSearch, RandomSearch, SearchAlgorithm
from shoal.tune.space import LogUniform, RandInt, SamplingFunction, Uniform, loguniform, randint, uniform
from shoal.tune.tuner import Tuner

__all__ = [
    "ASHA",
    "BayesOpt",
    "GridSearch",
    "LogUniform",
    "RandInt",
    "RandomSearch",
    "SamplingFunction",
    "SearchAlgorithm",
    "Tuner",
    "TunerConfig",
    "TunerContext",
    "TunerResults",
    "Uniform",
    "get_tuner_context",
    "loguniform",
    "randint",
    "search",
    "uniform",
]
