"""L03 tool execution: the Lambda entry point."""

from strata.handler import make_handler
from strata_tool_execution.app import create_app

handler = make_handler(create_app())
