"""L09 API gateway: the Lambda entry point (HTTP routes, the HTTP API authorizer, the bootstrap command,
the request-log flush)."""

from strata.handler import make_handler
from strata_api_gateway import authorizer, keys
from strata_api_gateway.app import create_app

handler = make_handler(
    create_app(),
    authorizer=authorizer.authorize,
    commands={"bootstrap": keys.bootstrap},
    schedules={"flush_request_log": "strata_api_gateway.usage:flush_request_log"},
)
