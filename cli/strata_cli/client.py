"""The one HTTP client every API command uses: the base URL and key (given, or the running local cloud's), and an
API error turned into one message (the problem+json `detail` and the status) and an exit code."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import islice
from typing import Annotated, Any, NoReturn

import httpx
import typer

from strata_cli.display import errors
from strata_cli.project import project_root, session_file

# Exit codes: a request the API refused (or could not be made), and an outcome that failed (a goal, a gate).
REFUSED = 2
FAILED = 1

TRANSIENT = {429, 502, 503, 504}  # a GET that got one of these is tried again, after Retry-After when given
GET_ATTEMPTS = 4
MAX_RETRY_WAIT_S = 5.0

ApiOption = Annotated[
    str | None,
    typer.Option("--api", envvar="STRATA_API_URL", help="API base URL (default: the running `strata dev`'s)."),
]
# `status` and `eval-gate` took --url before --api existed: both names work there.
ApiOrUrlOption = Annotated[
    str | None,
    typer.Option("--api", "--url", envvar="STRATA_API_URL", help="API base URL (default: the running `strata dev`'s)."),
]
ApiKeyOption = Annotated[
    str | None, typer.Option("--key", envvar="STRATA_API_KEY", help="API key (default: the running `strata dev`'s).")
]


class ApiError(Exception):
    """The API answered an error (`status` >= 400), or could not be reached (`status` 0)."""

    def __init__(self, method: str, path: str, status: int, detail: str, problem: dict[str, Any] | None = None):
        super().__init__(f"{method} {path}: {status} {detail}")
        self.method = method
        self.path = path
        self.status = status
        self.detail = detail
        self.problem = problem or {}

    def message(self) -> str:
        if self.status == 0:
            return f"{self.method} {self.path}: {self.detail}"
        title = self.problem.get("title")
        text = f"{self.method} {self.path} answered {self.status}{f' {title}' if title else ''}: {self.detail}"
        for field in self.problem.get("errors") or []:  # a 422 lists the fields that did not validate
            where = ".".join(str(part) for part in field.get("loc", []))
            text += f"\n  {where}: {field.get('msg', '')}"
        for problem in self.problem.get("problems") or []:
            text += f"\n  {problem}"
        return text


def _error_of(method: str, path: str, response: httpx.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "detail" in body:
        detail = body["detail"] if isinstance(body["detail"], str) else json.dumps(body["detail"])
        return ApiError(method, path, response.status_code, detail, body)
    text = response.text.strip()[:500] or response.reason_phrase
    return ApiError(method, path, response.status_code, text)


class ApiClient:
    """Strata's HTTP API with one key: JSON in and out, errors raised as `ApiError`."""

    def __init__(self, base_url: str, key: str, timeout_s: float = 30, transport: httpx.BaseTransport | None = None):
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(
            base_url=self.base_url,
            headers={"authorization": f"Bearer {key}", "user-agent": "strata-cli"},
            timeout=timeout_s,
            transport=transport,
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        ok: tuple[int, ...] = (),
    ) -> httpx.Response:
        """One request; an error status not in `ok` raises ApiError. GETs are tried again on transient answers."""
        params = {k: v for k, v in (params or {}).items() if v is not None}
        attempts = GET_ATTEMPTS if method == "GET" else 1
        for attempt in range(1, attempts + 1):
            try:
                response = self.http.request(
                    method, path, params=params, json=body, headers=headers, follow_redirects=False
                )
            except httpx.TransportError as exc:
                if attempt < attempts:
                    time.sleep(0.2 * 2**attempt)
                    continue
                raise ApiError(method, path, 0, f"{self.base_url} is not answering ({exc})") from exc
            if response.status_code in TRANSIENT and attempt < attempts:
                time.sleep(_retry_after(response, 0.2 * 2**attempt))
                continue
            if response.status_code >= 400 and response.status_code not in ok:
                raise _error_of(method, path, response)
            return response
        raise AssertionError("unreachable")  # the loop returns or raises

    def get(self, path: str, **params: Any) -> Any:
        return self.send("GET", path, params=params).json()

    def post(self, path: str, body: Any = None) -> Any:
        return self.send("POST", path, body=body).json()

    def get_if_changed(self, path: str, etag: str | None) -> tuple[Any | None, str | None]:
        """GET with `If-None-Match`: (the body, its ETag), or (None, the same ETag) when it has not changed (304)."""
        headers = {"if-none-match": etag} if etag else None
        response = self.send("GET", path, headers=headers, ok=(304,))
        if response.status_code == 304:
            return None, etag
        return response.json(), response.headers.get("etag")

    def pages(self, path: str, *, page_size: int = 100, **params: Any) -> Iterator[dict[str, Any]]:
        """Every item of a list, page after page (newest first, as the API orders them)."""
        cursor: str | None = None
        while True:
            page = self.get(path, limit=page_size, cursor=cursor, **params)
            yield from page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def first(self, path: str, count: int, **params: Any) -> list[dict[str, Any]]:
        """The first `count` items of a list (fewer when it has fewer), in as few pages as the API allows."""
        return list(islice(self.pages(path, page_size=min(count, 200), **params), count))


def _retry_after(response: httpx.Response, default_s: float) -> float:
    try:
        return min(float(response.headers.get("retry-after", default_s)), MAX_RETRY_WAIT_S)
    except ValueError:
        return default_s


def credentials(url: str | None, key: str | None) -> tuple[str, str]:
    """The API URL and key: as given, else the running local cloud's (from `strata dev`'s session file)."""
    if url is not None and key is not None:
        return url, key
    try:
        path = session_file(project_root())
    except typer.BadParameter:
        path = None
    if path is None or not path.is_file():
        fail("no running local cloud found: start `strata dev` or pass --api and --key", REFUSED)
    session = json.loads(path.read_text())
    if url is not None and url.rstrip("/") != session["api_url"].rstrip("/"):
        fail(f"{url} is not the local cloud's API: pass its --key too", REFUSED)
    return url or session["api_url"], key or session["api_key"]


def fail(message: str, code: int) -> NoReturn:
    errors.print(message, style="red", markup=False, highlight=False)
    raise typer.Exit(code)


@contextmanager
def connect(url: str | None, key: str | None) -> Iterator[ApiClient]:
    """A client for the command's API; an API error anywhere in the block is shown and ends the command (exit 2)."""
    base_url, secret = credentials(url, key)
    with ApiClient(base_url, secret) as api:
        try:
            yield api
        except ApiError as exc:
            fail(exc.message(), REFUSED)
