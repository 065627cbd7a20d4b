"""The review web UI: a FastAPI app over one ``Review`` (``maslow.ui.state``), with a JSON API under ``/api/``.

Routes:

- ``GET /``: the page (one HTML file, inline CSS and JS, no build step, nothing fetched from elsewhere), opened on the
  page of 50 findings that holds the first undecided one;
- ``GET /api/summary``: counts per status, per type and status; the session, classes and types;
- ``GET /api/findings?type=&class=&status=&offset=0&limit=50``: findings in rank order, filtered (comma-separated
  values; status ``pending`` for no decision), with ``total``;
- ``GET /api/findings/{key}``: one finding (404 for an unknown key) and ``GET /api/findings/{key}/crop.png?size=``
  (404 when there is none: the message names the image and why, or says the finding is about the dataset);
- ``POST /api/findings/{key}/decision`` ``{"status": "accepted"|"rejected"|"skipped", "label", "note", "reviewer"}``:
  committed before the answer (422 for a bad status or label, or text holding a NUL character; a label is kept with
  ``accepted`` only);
- ``GET /api/changes``: what applying the decisions so far would do (the change log);
- ``GET /api/decisions[?history=true]``: the decisions as JSON (``download=true``: as a file).

Errors are JSON ``{"error": message, "detail": ...}``: 400 for a request to another host (below), 404 for an unknown
finding, 422 for bad input, 503 when the database fails (``StoreError``).

DNS rebinding: a web page of ``evil.example`` whose name the attacker then points at this machine can send requests
here from the reviewer's browser, with ``Host: evil.example``. So a request's ``Host`` must be one of
``allowed_hosts(host, allow)`` (``host_allowed``), else it gets 400: the name or address the server listens on,
``localhost``; for a wildcard address (``0.0.0.0``, ``::``: every address of the machine) also the machine's own
names (``socket.gethostname()``, ``socket.getfqdn()`` when DNS answers within 2 s); the names given with ``allow`` (``--allow-host``); and any IP
address. An address is safe to accept: rebinding needs a name the attacker controls, and a browser sends an address
as ``Host`` only to that address. Any address, not only this machine's own: behind NAT, port forwarding or a
container the browser's address is another machine's, and the stdlib can't list the machine's addresses anyway.
"""

import ipaddress
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from maslow.errors import MaslowError, require

if TYPE_CHECKING:
    from fastapi import FastAPI

    from maslow.ui.state import Review


def create_app(review: "Review", *, title: str = "maslow review", host: str = "127.0.0.1",
               allow_hosts: Sequence[str] = ()) -> "FastAPI":
    """The FastAPI app serving ``review``, to be served on ``host``; requests must name an allowed host
    (``allowed_hosts(host, allow_hosts)``, see the module docstring).

    Raises:
        MissingDependencyError: FastAPI is not installed (``pip install 'maslow[serve]'``).
        MaslowError: an ``allow_hosts`` value that is no host name pattern.
    """
    require("fastapi", "serve")
    from fastapi import FastAPI, Query, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from pydantic import BaseModel, Field, field_validator
    from starlette.exceptions import HTTPException

    from maslow.store.reviews import StoreError
    from maslow.ui.page import render_page
    from maslow.ui.state import FILTER_STATUSES, MAX_LIMIT, NotFound

    class DecisionIn(BaseModel):
        status: str = Field(description="accepted, rejected or skipped")
        label: str | None = Field(None, description="the class chosen (wrong_class, ambiguous, missing, "
                                  "class_conflict); kept with an accept only")
        note: str = ""
        reviewer: str = ""

        @field_validator("label", "note", "reviewer")
        @classmethod
        def no_nul(cls, v: str | None) -> str | None:
            # PostgreSQL can't store U+0000 in text (it answered 503) and SQLite did: refused on both alike
            if v is not None and "\x00" in v:
                raise ValueError(f"must not contain the NUL character (U+0000), found at position {v.index(chr(0))}")
            return v

    # no Swagger page: it loads its scripts from a CDN; the schema is at /api/openapi.json
    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url="/api/openapi.json")
    app.add_middleware(_HostCheck, allowed=allowed_hosts(host, allow_hosts))

    def error(status: int, message: str, detail: Any = None) -> JSONResponse:
        return JSONResponse({"error": message, "detail": detail}, status_code=status)

    @app.exception_handler(NotFound)
    async def not_found(_: Request, e: NotFound) -> JSONResponse:
        return error(404, str(e))

    @app.exception_handler(StoreError)
    async def store_failed(_: Request, e: StoreError) -> JSONResponse:
        return error(503, str(e))

    @app.exception_handler(MaslowError)
    async def bad_input(_: Request, e: MaslowError) -> JSONResponse:
        return error(422, str(e))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, e: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(x.get("loc", ())), "msg": x.get("msg", "")} for x in e.errors()]
        where = ", ".join(".".join(str(p) for p in x["loc"]) + f": {x['msg']}" for x in errors)
        return error(422, f"invalid request: {where}", errors)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, e: HTTPException) -> JSONResponse:
        return error(e.status_code, str(e.detail))

    @app.get("/", response_class=HTMLResponse)
    def page() -> HTMLResponse:
        first = review.first_pending() or 0  # the page opens where the review stands: at the first undecided finding
        return HTMLResponse(render_page(title, review.summary(), review.page(offset=first - first % 50, limit=50)))

    @app.get("/api/summary")
    def summary() -> dict[str, Any]:
        return review.summary()

    @app.get("/api/findings")
    def findings(type: str | None = None, class_: str | None = Query(None, alias="class"), status: str | None = None,
                 offset: int = Query(0, ge=0), limit: int = Query(50, ge=1, le=MAX_LIMIT)) -> dict[str, Any]:
        return review.page(type=type, cls=class_, status=status, offset=offset, limit=limit)

    @app.get("/api/findings/{key}")
    def finding(key: int) -> dict[str, Any]:
        return review.item(key)

    @app.get("/api/findings/{key}/crop.png", response_model=None)
    def crop(key: int, size: int = Query(240, ge=32, le=1024)) -> Response:
        png = review.crop_png(key, size)  # 404 for an unknown key, and for no crop (naming the file and why)
        return Response(png, media_type="image/png", headers={"Cache-Control": "max-age=3600"})

    @app.post("/api/findings/{key}/decision", response_model=None)
    def decide(key: int, body: DecisionIn) -> Any:
        if body.status not in FILTER_STATUSES[1:]:
            return error(422, f"status must be one of {', '.join(FILTER_STATUSES[1:])}, got {body.status!r}")
        # a class goes with an accept only (a rejected or skipped finding changes nothing: a class sent with one,
        # as a page that sent its picker's value with every key did, would only mislead the export)
        label = (body.label or None) if body.status == "accepted" else None
        d = review.decide(key, body.status, label=label, note=body.note, reviewer=body.reviewer)
        return {"decision": d.to_dict(), "summary": review.summary()}

    @app.get("/api/changes")
    def changes() -> dict[str, Any]:
        return review.changes()

    @app.get("/api/decisions", response_model=None)
    def export(history: bool = False, download: bool = False) -> Any:
        data = review.export(history=history)
        if not download:
            return data
        import json

        name = f"review-{review.session.issues_hash[:12]}.json"
        return Response(json.dumps(data, indent=2, ensure_ascii=False).encode("utf-8"),
                        media_type="application/json",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    return app


_NAME = re.compile(r"(\*|(\*\.)?[a-z0-9_-]+(\.[a-z0-9_-]+)*)")


def allowed_hosts(host: str, allow: Sequence[str] = ()) -> tuple[str, ...]:
    """The host names a request may give (``Host`` header) to a server listening on ``host``, besides any IP
    address: ``host`` itself, ``localhost``, the machine's own names when ``host`` is a wildcard address
    (``0.0.0.0``, ``::``, ``""``), and ``allow`` (``--allow-host``: a name, ``*.example.org`` for the names under
    ``example.org``, ``*`` for any). Lower case, sorted.

    Raises:
        MaslowError: an ``allow`` value that is not a name or such a pattern (a URL, a port).
    """
    names = {"localhost", _bare(host)}
    if _is_wildcard(host):
        names |= set(_own_names())
    for name in allow:
        bare = _bare(name)
        if _NAME.fullmatch(bare) is None:
            raise MaslowError(f"--allow-host must be a host name (box.lan), *.DOMAIN or *, got {name!r}")
        names.add(bare)
    return tuple(sorted(n for n in names if n and _ip(n) is None))


def _own_names(timeout: float = 2.0) -> tuple[str, ...]:
    """The machine's host name and, when the resolver answers within ``timeout`` seconds, its fully qualified
    name (``socket.getfqdn()`` asks DNS, which can hang for a long while where it is broken; the lookup is left
    running in a daemon thread then, and the server starts without that name: ``--allow-host`` adds it)."""
    import socket
    import threading

    names = [_bare(socket.gethostname())]
    found: list[str] = []
    lookup = threading.Thread(target=lambda: found.append(socket.getfqdn()), daemon=True)
    lookup.start()
    lookup.join(timeout)
    return tuple(names + [_bare(n) for n in found])


def host_allowed(header: str, allowed: Sequence[str]) -> bool:
    """Whether a request's ``Host`` header (``name``, ``name:port``, ``1.2.3.4:port``, ``[::1]:port``) names an
    allowed host: any IP address, or a name in ``allowed`` (``allowed_hosts``; ``*.domain`` and ``*`` patterns)."""
    m = re.fullmatch(r"\[([0-9a-fA-F:.%]+)\](?::\d*)?|([^:\[\]]+)(?::\d*)?", header.strip())
    if m is None:
        return False
    if m.group(1) is not None:  # an IPv6 address (only in brackets)
        return _ip(m.group(1)) is not None
    name = _bare(m.group(2))
    if _ip(name) is not None:
        return True
    return any(p == "*" or p == name or (p.startswith("*.") and name.endswith(p[1:])) for p in allowed)


def _bare(name: str) -> str:
    """A host name as compared: lower case, without brackets or a final dot."""
    return name.strip().strip("[]").rstrip(".").lower()


def _ip(text: str) -> Any:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _is_wildcard(host: str) -> bool:
    ip = _ip(_bare(host))
    return host.strip() == "" or (ip is not None and ip.is_unspecified)


class _HostCheck:
    """ASGI middleware: 400 (``{"error": ...}``) for a request whose ``Host`` is not allowed (``host_allowed``)."""

    def __init__(self, app: Any, allowed: Sequence[str]) -> None:
        self.app, self.allowed = app, tuple(allowed)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            header = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), "")
            if not host_allowed(header, self.allowed):
                from fastapi.responses import JSONResponse

                message = (f"Host must name this server ({', '.join(self.allowed)} or an IP address; more with "
                           f"--allow-host), got {header!r}")
                await JSONResponse({"error": message, "detail": None}, status_code=400)(scope, receive, send)
                return
        await self.app(scope, receive, send)
