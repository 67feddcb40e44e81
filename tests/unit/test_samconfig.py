"""samconfig.toml's environments set only parameters template.yaml has, to values it allows, and no secrets."""

from __future__ import annotations

import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))


def template_parameters() -> dict[str, Any]:
    from samtranslator.yaml_helper import yaml_parse

    parameters: dict[str, Any] = yaml_parse((ROOT / "template.yaml").read_text(encoding="utf-8"))["Parameters"]
    return parameters


@pytest.mark.parametrize("environment", ["default", "staging", "prod"])
def test_an_environment_deploys_its_stage_with_valid_parameters(environment: str) -> None:
    deploy = CONFIG[environment]["deploy"]["parameters"]
    overrides = dict(item.split("=", 1) for item in shlex.split(deploy["parameter_overrides"]))
    parameters = template_parameters()

    assert overrides["Stage"] == ("dev" if environment == "default" else environment)
    assert CONFIG[environment]["global"]["parameters"]["stack_name"] == f"strata-{overrides['Stage']}"
    for name, value in overrides.items():
        spec = parameters[name]
        assert not spec.get("NoEcho"), f"{name} is a secret: it does not belong in samconfig.toml"
        if "AllowedValues" in spec:
            assert value in [str(v) for v in spec["AllowedValues"]], name
        if spec["Type"] == "Number":
            assert float(spec.get("MinValue", "-inf")) <= float(value) <= float(spec.get("MaxValue", "inf")), name
