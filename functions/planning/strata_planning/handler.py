"""L05 planning: the Lambda entry point."""

from strata.handler import make_handler
from strata_planning.app import create_app

handler = make_handler(create_app())
