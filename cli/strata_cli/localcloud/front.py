"""The HTTP front: API Gateway HTTP API (payload 2.0, Lambda authorizer with caching) and the Lambda Invoke API."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

from starlette.types import Receive, Scope, Send

from strata_cli.localcloud.lambdas import FunctionPool, InvocationError
from strata_cli.localcloud.servers import Headers, read_body, respond
from strata_cli.localcloud.template import Route

PROBLEM = "application/problem+json"
Response = tuple[int, Headers, bytes]
TEXT_TYPES = ("text/", "application/json", "application/problem+json", "application/javascript", "application/xml")


@dataclass(frozen=True)
class CompiledRoute:
    route: Route
    pattern: re.Pattern[str]
    params: tuple[str, ...]
    rank: tuple[int, int]


def compile_routes(routes: list[Route]) -> list[CompiledRoute]:
    """Routes in API Gateway's order: exact paths first, then the most literal segments, greedy last."""
    compiled = []
    for route in routes:
        regex, params, literal, greedy = "", [], 0, 0
        for segment in route.path.strip("/").split("/") if route.path != "/" else []:
            if segment.endswith("+}"):
                params.append(segment[1:-2])
                regex += r"/(.+)"
                greedy = 1
            elif segment.startswith("{"):
                params.append(segment[1:-1])
                regex += r"/([^/]+)"
            else:
                regex += "/" + re.escape(segment)
                literal += 1
        regex = regex or "/"
        if route.path.endswith("/") and route.path != "/":
            regex += "/"
        compiled.append(CompiledRoute(route, re.compile(f"^{regex}$"), tuple(params), (greedy, -literal)))
    return sorted(compiled, key=lambda c: (c.rank, len(c.params)))


def _problem(status: int, slug: str, title: str, detail: str, request_id: str) -> Response:
    body = {
        "type": f"https://strata.dev/problems/{slug}",
        "title": title,
        "status": status,
        "detail": detail,
        "request_id": request_id,
        "message": title,
    }
    return status, [("content-type", PROBLEM), ("apigw-requestid", request_id)], json.dumps(body).encode()


class HttpFront:
    """Turns HTTP requests into payload 2.0 events for the template's routes, after the authorizer admits them."""

    def __init__(
        self,
        routes: list[Route],
        pools: dict[str, FunctionPool],
        authorizer: str | None,
        identity_headers: list[str],
        authorizer_ttl_s: int,
        stage: str = "$default",
    ) -> None:
        self.routes = compile_routes(routes)
        self.pools = pools
        self.authorizer = pools.get(authorizer) if authorizer else None
        self.identity_headers = identity_headers
        self.authorizer_ttl_s = authorizer_ttl_s
        self.stage = stage
        self._auth_cache: dict[tuple[str, ...], tuple[float, dict[str, Any] | None]] = {}
        self.api_id = "local"

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for compiled in self.routes:
            if compiled.route.method not in (method, "ANY"):
                continue
            found = compiled.pattern.match(path)
            if found:
                return compiled.route, {k: unquote(v) for k, v in zip(compiled.params, found.groups(), strict=True)}
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await respond(send, *await self.handle(scope, await read_body(receive)))

    async def handle(self, scope: Scope, body: bytes) -> Response:
        request_id = base64.b32encode(uuid.uuid4().bytes[:10]).decode().rstrip("=")
        # match on the path as sent: uvicorn's scope["path"] is already percent-decoded
        method, path = scope["method"], scope.get("raw_path", scope["path"].encode()).decode("latin-1")
        matched = self.match(method, path)
        if matched is None:
            return _problem(404, "not-found", "Not Found", f"no route for {method} {path}", request_id)
        route, path_params = matched
        event = self.request_event(scope, body, route, path, path_params, request_id)
        if not route.public and self.authorizer is not None:
            identity = [event["headers"].get(h) for h in self.identity_headers]
            if not all(identity):
                return _problem(
                    401,
                    "unauthorized",
                    "Unauthorized",
                    "this route needs a credential: send Authorization: Bearer <key>",
                    request_id,
                )
            context = await self.authorize(event, [str(i) for i in identity])
            if context is None:
                return _problem(403, "forbidden", "Forbidden", "the credential was not accepted", request_id)
            if context == {"__error__": True}:
                return _problem(500, "authorizer-error", "Internal Server Error", "the authorizer failed", request_id)
            event["requestContext"]["authorizer"] = {"lambda": context}
        try:
            raw = await self.pools[route.function].invoke(event)
        except InvocationError as exc:
            if exc.error_type == "TooManyRequestsException":  # API Gateway answers a throttled integration so
                return _problem(503, "unavailable", "Service Unavailable", str(exc), request_id)
            return _problem(
                500,
                "internal",
                "Internal Server Error",
                f"the function failed ({exc.error_type}); see its log",
                request_id,
            )
        return self.to_http(raw, request_id)

    def request_event(
        self, scope: Scope, body: bytes, route: Route, raw_path: str, path_params: dict[str, str], request_id: str
    ) -> dict[str, Any]:
        headers: dict[str, str] = {}
        cookies: list[str] = []
        for key, value in scope["headers"]:
            name, text = key.decode("latin-1").lower(), value.decode("latin-1")
            if name == "cookie":
                cookies += [c.strip() for c in text.split(";") if c.strip()]
                continue
            headers[name] = f"{headers[name]},{text}" if name in headers else text
        query = scope.get("query_string", b"").decode("latin-1")
        params: dict[str, str] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            params[key] = f"{params[key]},{value}" if key in params else value
        now = datetime.now(UTC)
        content_type = headers.get("content-type", "")
        is_text = not body or content_type.startswith(TEXT_TYPES) or "json" in content_type
        client = scope.get("client") or ("127.0.0.1", 0)
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": route.route_key,
            "rawPath": raw_path,
            "rawQueryString": query,
            "headers": headers,
            "requestContext": {
                "accountId": "000000000000",
                "apiId": self.api_id,
                "domainName": headers.get("host", "127.0.0.1"),
                "domainPrefix": headers.get("host", "127.0.0.1").split(".")[0],
                "http": {
                    "method": scope["method"],
                    "path": raw_path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": client[0],
                    "userAgent": headers.get("user-agent", ""),
                },
                "requestId": request_id,
                "routeKey": route.route_key,
                "stage": self.stage,
                "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "timeEpoch": int(now.timestamp() * 1000),
            },
            "isBase64Encoded": not is_text,
        }
        if cookies:
            event["cookies"] = cookies
        if params:
            event["queryStringParameters"] = params
        if path_params:
            event["pathParameters"] = path_params
        if body:
            event["body"] = body.decode() if is_text else base64.b64encode(body).decode()
        return event

    async def authorize(self, request: dict[str, Any], identity: list[str]) -> dict[str, Any] | None:
        """Run the Lambda authorizer (cached per identity for ReauthorizeEvery seconds)."""
        assert self.authorizer is not None
        key = tuple(identity)
        cached = self._auth_cache.get(key)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        event = {k: v for k, v in request.items() if k not in ("body", "isBase64Encoded")}
        event.update(
            type="REQUEST",
            identitySource=identity,
            routeArn=f"arn:aws:execute-api:us-east-1:000000000000:{self.api_id}/{self.stage}/"
            f"{request['requestContext']['http']['method']}{request['rawPath']}",
        )
        try:
            result = json.loads(await self.authorizer.invoke(event))
        except (InvocationError, ValueError):
            return {"__error__": True}
        context: dict[str, Any] | None = result.get("context", {}) if result.get("isAuthorized") is True else None
        if self.authorizer_ttl_s > 0:
            if len(self._auth_cache) > 10_000:
                self._auth_cache.clear()
            self._auth_cache[key] = (time.monotonic() + self.authorizer_ttl_s, context)
        return context

    @staticmethod
    def to_http(raw: bytes, request_id: str) -> Response:
        """A payload 2.0 response (or a bare value, which HTTP API sends as JSON with status 200)."""
        try:
            result = json.loads(raw)
        except ValueError:
            return 502, [("content-type", "application/json")], b'{"message":"Internal Server Error"}'
        if not (isinstance(result, dict) and "statusCode" in result):
            return 200, [("content-type", "application/json"), ("apigw-requestid", request_id)], raw
        headers = {str(k).lower(): str(v) for k, v in (result.get("headers") or {}).items()}
        for key, values in (result.get("multiValueHeaders") or {}).items():
            headers[str(key).lower()] = ",".join(str(v) for v in values)
        headers["apigw-requestid"] = request_id
        cookies = [("set-cookie", str(cookie)) for cookie in result.get("cookies") or []]
        body = result.get("body") or ""
        payload = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
        return int(result["statusCode"]), [*headers.items(), *cookies], payload


class LambdaApi:
    """The Lambda Invoke API (`POST /2015-03-31/functions/{name}/invocations`), as boto3's lambda client calls it."""

    PATH = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations$")

    def __init__(self, pools: dict[str, FunctionPool], stats: Callable[[], dict[str, Any]]) -> None:
        self.pools = pools
        self.stats = stats
        self._background: set[asyncio.Task[Any]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await respond(send, *await self.handle(scope, await read_body(receive)))

    async def handle(self, scope: Scope, body: bytes) -> Response:
        json_type = [("content-type", "application/json")]
        if scope["method"] == "GET" and scope["path"] == "/_local/status":
            return 200, json_type, json.dumps(self.stats()).encode()
        found = self.PATH.match(scope["path"])
        if scope["method"] != "POST" or not found:
            return 404, json_type, b'{"Type":"User","message":"Unknown operation"}'
        name = unquote(found.group(1)).split(":")[-1]
        pool = self.pools.get(name)
        if pool is None:
            missing = {"Type": "User", "Message": f"Function not found: {name}"}
            return 404, [*json_type, ("x-amzn-errortype", "ResourceNotFoundException")], json.dumps(missing).encode()
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        invocation_type = headers.get("x-amz-invocation-type", "RequestResponse")
        if invocation_type == "DryRun":
            return 204, json_type, b""
        if invocation_type == "Event":
            task = asyncio.create_task(pool.invoke(body or b"{}"))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            return 202, json_type, b""
        try:
            return 200, [*json_type, ("x-amz-executed-version", "$LATEST")], await pool.invoke(body or b"{}")
        except InvocationError as exc:
            return 200, [*json_type, ("x-amz-function-error", "Unhandled")], json.dumps(exc.to_payload()).encode()
