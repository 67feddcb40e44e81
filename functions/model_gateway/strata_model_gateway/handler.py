"""L04 model gateway: the Lambda entry point (HTTP routes, and the flush of metered usage into Postgres)."""

from strata.handler import make_handler
from strata_model_gateway.app import create_app

handler = make_handler(create_app(), schedules={"flush_model_usage": "strata_model_gateway.metering:flush"})
