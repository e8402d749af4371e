import json

from snowflake.ml.jobs import remote


@remote("ML_POOL", stage_name="payload_stage", target_instances=2)
def train_torch() -> dict:
    from snowflake.ml.modeling.distributors.pytorch import (
        PyTorchDistributor,
        PyTorchScalingConfig,
        WorkerResourceConfig,
        get_context,
    )

    def train_func():
        import torch
        import torch.distributed as dist

        context = get_context()
        if not dist.is_initialized():
            dist.init_process_group(backend=context.get_default_backend())
        value = torch.tensor([float(context.get_world_rank() + 1)])
        dist.all_reduce(value)
        context.get_metrics_reporter().log_metrics({"sum": float(value.item())})

    distributor = PyTorchDistributor(
        train_func=train_func,
        scaling_config=PyTorchScalingConfig(
            num_nodes=2,
            num_workers_per_node=1,
            resource_requirements_per_worker=WorkerResourceConfig(num_cpus=1),
        ),
    )
    result = distributor.run()
    return {"metrics": result.get_metrics()}


job = train_torch()
print("RESULT " + json.dumps({"status": job.wait(), **job.result()}))
