"""L07 learning: the Lambda entry point."""

from strata.handler import make_handler
from strata_learning.app import create_app

handler = make_handler(create_app())
