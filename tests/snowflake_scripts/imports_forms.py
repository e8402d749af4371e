import json
import os
import tempfile
import zipfile

from snowflake.ml.jobs import submit_file
from snowflake.snowpark import Session

session = Session.builder.config("local_testing", True).create()
project = tempfile.mkdtemp()
src = os.path.join(project, "src")
# a package directory, a single module and a zip that holds a package's files at its root
os.makedirs(os.path.join(src, "helpers"))
with open(os.path.join(src, "helpers", "__init__.py"), "w") as handle:
    handle.write("")
with open(os.path.join(src, "helpers", "text.py"), "w") as handle:
    handle.write("def shout(s):\n    return s.upper()\n")
with open(os.path.join(src, "scaling.py"), "w") as handle:
    handle.write("def double(x):\n    return 2 * x\n")
with zipfile.ZipFile(os.path.join(src, "lib.zip"), "w") as archive:
    archive.writestr("__init__.py", "")
    archive.writestr("core.py", "def answer():\n    return 42\n")
with zipfile.ZipFile(os.path.join(src, "other.zip"), "w") as archive:  # the package's folder inside
    archive.writestr("other_lib/__init__.py", "")
    archive.writestr("other_lib/core.py", "def answer():\n    return 'other'\n")
with open(os.path.join(project, "main.py"), "w") as handle:
    handle.write(
        "import os, ray\n"
        "from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy as Pin\n"
        "def use_all():\n"
        "    from my_lib import core\n"
        "    from my_helpers.text import shout\n"
        "    from my_scaling import double\n"
        "    from other_lib import core as other\n"
        "    return [core.answer(), shout('ok'), double(21), other.answer()]\n"
        "ray.init(address='auto')\n"
        "@ray.remote(num_cpus=0.1)\n"
        "def on_node():\n"
        "    return use_all()\n"
        "nodes = os.environ['SHOAL_JOB_NODE_IDS'].split(',')\n"
        "pinned = [on_node.options(scheduling_strategy=Pin(n, soft=False)).remote() for n in nodes]\n"
        "__return__ = {'head': use_all(), 'nodes': ray.get(pinned)}\n"
    )
job = submit_file(
    os.path.join(project, "main.py"),
    "ML_POOL",
    stage_name="payload_stage",
    session=session,
    target_instances=2,
    imports=[
        (os.path.join(src, "lib.zip"), "my_lib"),
        (os.path.join(src, "helpers"), "my_helpers"),
        (os.path.join(src, "scaling.py"), "my_scaling"),
        (os.path.join(src, "other.zip"), "other_lib"),
    ],
)
result = job.result()
print("RESULT " + json.dumps({"status": job.status, "result": result, "logs": job.get_logs()[-2000:]}))
