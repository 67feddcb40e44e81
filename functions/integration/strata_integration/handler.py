"""L11 integration: the Lambda entry point."""

from strata.handler import make_handler
from strata_integration.app import create_app

handler = make_handler(create_app())
