"""A function's worker: the import path Lambda gives (its CodeUri + the layer + installed packages), then the
real AWS Lambda runtime interface client polling the local cloud's Runtime API."""

import os
import sys


def lambda_sys_path() -> list[str]:
    """CodeUri and layer folders first, then only the interpreter's standard library and site-packages."""
    task_root = os.environ["LAMBDA_TASK_ROOT"]
    layers = [p for p in os.environ.get("STRATA_LOCAL_LAYER_PATHS", "").split(os.pathsep) if p]
    system = [p for p in sys.path[1:] if p and (p.startswith(sys.base_prefix) or "site-packages" in p)]
    return [task_root, *layers, *system]


if __name__ == "__main__":
    sys.path[:] = lambda_sys_path()
    os.chdir(os.environ["LAMBDA_TASK_ROOT"])
    from awslambdaric.__main__ import main

    main([sys.argv[0], os.environ["_HANDLER"]])
