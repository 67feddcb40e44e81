"""L06 evaluation: the Lambda entry point."""

from strata.handler import make_handler
from strata_evaluation.app import create_app

handler = make_handler(create_app())
