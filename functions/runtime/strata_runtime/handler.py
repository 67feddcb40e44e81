"""L02 runtime: the Lambda entry point."""

from strata.handler import make_handler
from strata_runtime.app import create_app

handler = make_handler(create_app())
