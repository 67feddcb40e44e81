"""The path -> layer map the peer breakers use agrees with template.yaml's routes (no drift either way)."""

from __future__ import annotations

from pathlib import Path

from strata.layers import LAYERS, RESOURCES, layer_of_path
from strata_cli.localcloud.template import load_template

ROOT = Path(__file__).resolve().parents[2]


def test_every_api_route_of_the_template_maps_to_the_layer_whose_function_serves_it() -> None:
    template = load_template(ROOT / "template.yaml")
    layer_of_function = {
        name: spec.code_uri.name for name, spec in template.functions.items() if spec.code_uri.name in LAYERS
    }
    checked = 0
    for route in template.routes:
        if not route.path.startswith(("/v1/", "/health/")):
            continue
        assert layer_of_path(route.path) == layer_of_function[route.function], route.route_key
        checked += 1
    assert checked > 100
    served = {route.path.split("/")[2] for route in template.routes if route.path.startswith("/v1/")}
    assert set(RESOURCES) - served == set(), "resources no template route serves"
