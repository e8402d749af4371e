import json

from snowflake.ml.runtime_cluster import get_nodes, scale_cluster

before = len(get_nodes())
scaled_down = scale_cluster(2)
after_down = len(get_nodes())
scaled_up = scale_cluster(3)
print(
    "RESULT "
    + json.dumps(
        {
            "before": before,
            "down": [scaled_down, after_down],
            "up": [scaled_up, len(get_nodes())],
            "cpus": get_nodes()[0]["cpus"],
        }
    )
)
