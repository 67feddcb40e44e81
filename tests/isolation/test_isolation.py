"""Each function runs with only its own folder and the shared layer, as in Lambda; none imports another's code."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from strata_cli.localcloud.template import load_template
from tests.conftest import ROOT

TEMPLATE = load_template(ROOT / "template.yaml")
FUNCTIONS = sorted(TEMPLATE.functions.values(), key=lambda f: f.logical_id)
PACKAGES = {f.logical_id: f.handler.split(".")[0] for f in FUNCTIONS}

PROBE = """
import json, sys
# Lambda's path: the function's folder and the layer, then only the runtime's stdlib and packages
sys.path[:] = json.loads(sys.argv[1]) + [p for p in sys.path if p.startswith(sys.base_prefix) or "site-packages" in p]
handler_path, layer, other = sys.argv[2], sys.argv[3], sys.argv[4]
module, _, name = handler_path.rpartition(".")
handler = getattr(__import__(module, fromlist=[name]), name)
event = {"version": "2.0", "routeKey": "GET /health/" + layer + "/live", "rawPath": "/health/" + layer + "/live",
         "rawQueryString": "", "headers": {"host": "isolation.test"},
         "requestContext": {"http": {"method": "GET", "path": "/health/" + layer + "/live", "protocol": "HTTP/1.1",
                                     "sourceIp": "127.0.0.1", "userAgent": "isolation"},
                            "requestId": "isolation", "routeKey": "GET /health/" + layer + "/live", "stage": "$default",
                            "accountId": "000000000000", "apiId": "local", "domainName": "isolation.test",
                            "time": "27/Nov/2026:00:00:00 +0000", "timeEpoch": 0},
         "isBase64Encoded": False}
class Context:
    function_name = "isolation"; aws_request_id = "isolation"; memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:isolation"
    def get_remaining_time_in_millis(self): return 30000
response = handler(event, Context())
try:
    __import__(other)
    foreign = "importable"
except ModuleNotFoundError:
    foreign = "missing"
print(json.dumps({"status": response["statusCode"], "body": json.loads(response["body"]), "foreign": foreign,
                  "project_paths": [p for p in sys.path if p.startswith(sys.argv[5]) and "site-packages" not in p]}))
"""


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.logical_id)
def test_function_imports_and_answers_with_only_its_folder_and_the_layer(function: object) -> None:
    from strata_cli.localcloud.template import FunctionSpec

    assert isinstance(function, FunctionSpec)
    layer = function.code_uri.name
    other = next(pkg for fid, pkg in PACKAGES.items() if fid != function.logical_id)
    path = [str(function.code_uri), *(str(p) for p in function.layers)]
    env = {"POWERTOOLS_SERVICE_NAME": "isolation", "AWS_REGION": "us-east-1", "PATH": "/usr/bin:/bin"}

    # -I: no PYTHONPATH, no working directory, no user site; only the interpreter's own site-packages remain
    result = subprocess.run(
        [sys.executable, "-I", "-c", PROBE, json.dumps(path), function.handler, layer, other, str(ROOT)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["status"] == 200
    assert answer["body"]["layer"] == layer
    assert answer["foreign"] == "missing", f"{function.logical_id} can import {other}"
    assert sorted(answer["project_paths"]) == sorted(path)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_no_function_imports_another_functions_package() -> None:
    offences = []
    for function in FUNCTIONS:
        own = PACKAGES[function.logical_id]
        for source in function.code_uri.rglob("*.py"):
            foreign = (_imports(source) & set(PACKAGES.values())) - {own}
            offences += [f"{source.relative_to(ROOT)} imports {name}" for name in sorted(foreign)]
    for source in (ROOT / "shared").rglob("*.py"):
        offences += [
            f"{source.relative_to(ROOT)} (the layer) imports {name}"
            for name in sorted(_imports(source) & set(PACKAGES.values()))
        ]
    assert offences == []


def test_every_function_folder_holds_one_uniquely_named_package() -> None:
    for function in FUNCTIONS:
        packages = [d.name for d in function.code_uri.iterdir() if (d / "__init__.py").is_file()]
        assert packages == [PACKAGES[function.logical_id]], function.logical_id
    assert len(set(PACKAGES.values())) == len(FUNCTIONS) == 11
