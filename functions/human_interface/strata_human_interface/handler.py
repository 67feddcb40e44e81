"""L10 human interface: the Lambda entry point."""

from strata.handler import make_handler
from strata_human_interface.app import create_app

handler = make_handler(create_app())
