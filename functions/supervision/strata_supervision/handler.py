"""L08 supervision: the Lambda entry point."""

from strata.handler import make_handler
from strata_supervision.app import create_app

handler = make_handler(create_app())
