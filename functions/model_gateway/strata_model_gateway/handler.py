"""L04 model gateway: the Lambda entry point."""

from strata.handler import make_handler
from strata_model_gateway.app import create_app

handler = make_handler(create_app())
