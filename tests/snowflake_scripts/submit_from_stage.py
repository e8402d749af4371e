import json
import os
import tempfile

from snowflake.ml.jobs import submit_from_stage
from snowflake.snowpark import Session

from shoal.stages import create_stage  # how files reach a stage here (the reference uses session.file.put)

session = Session.builder.config("local_testing", True).create()
code = create_stage("@ML_DB.PUBLIC.CODE", exist_ok=True)
with tempfile.TemporaryDirectory() as tmp:
    with open(os.path.join(tmp, "helper.py"), "w") as handle:
        handle.write("def greet(name):\n    return f'hello {name}'\n")
    with open(os.path.join(tmp, "main.py"), "w") as handle:
        handle.write("import sys\nfrom helper import greet\n__return__ = [greet('stage'), sys.argv[1:]]\n")
    code.put(os.path.join(tmp, "helper.py"), "project")
    code.put(os.path.join(tmp, "main.py"), "project")

results = {}
for form, entrypoint in (("stage path", "@ML_DB.PUBLIC.CODE/project/main.py"), ("relative", "main.py")):
    job = submit_from_stage(
        "@ML_DB.PUBLIC.CODE/project",
        "ML_POOL",
        entrypoint=entrypoint,
        stage_name="payload_stage",
        session=session,
        target_instances=2,
        args=["--epochs", "2"],
    )
    results[form] = job.result()
try:
    submit_from_stage(
        "@ML_DB.PUBLIC.CODE/project",
        "ML_POOL",
        entrypoint="@ML_DB.PUBLIC.CODE/other/main.py",
        stage_name="payload_stage",
        session=session,
    )
    refused = ""
except ValueError as exc:
    refused = str(exc)
print("RESULT " + json.dumps({"results": results, "refused": refused}))
