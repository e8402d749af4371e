import json
import os
import tempfile

from snowflake.ml.jobs import submit_directory
from snowflake.snowpark import Session

session = Session.builder.config("local_testing", True).create()
project = tempfile.mkdtemp()
os.makedirs(os.path.join(project, "src"))
with open(os.path.join(project, "src", "train.py"), "w") as handle:
    handle.write(
        "import os, sys, ray\n"
        "from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy as Pin\n"
        "ray.init(address='auto')\n"
        "@ray.remote(num_cpus=0.1)\n"
        "def hello(i):\n"
        "    print(f'hello from instance {i}')\n"
        "nodes = os.environ['SHOAL_JOB_NODE_IDS'].split(',')\n"
        "pinned = [Pin(n, soft=False) for n in nodes]\n"
        "ray.get([hello.options(scheduling_strategy=p).remote(i) for i, p in enumerate(pinned)])\n"
        "print('args', sys.argv[1:])\n"
        "__return__ = len(nodes)\n"
    )
job = submit_directory(
    project,
    "ML_POOL",
    entrypoint="src/train.py",
    stage_name="payload_stage",
    session=session,
    target_instances=2,
    args=["--epochs", "3"],
)
count = job.result()
print(
    "RESULT "
    + json.dumps(
        {
            "status": job.status,
            "count": count,
            "head": job.get_logs(),
            "worker": job.get_logs(instance_id=1),
        }
    )
)
