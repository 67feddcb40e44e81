"""L07 learning: the Lambda entry point (HTTP routes; training examples and learned templates from scored runs)."""

from strata.handler import make_handler
from strata_learning.app import create_app

handler = make_handler(create_app(), consumers={"RunEvaluated": "strata_learning.consumers:on_run_evaluated"})
