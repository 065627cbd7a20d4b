"""The review web UI: a FastAPI app over one ``Review`` (``maslow.ui.state``), with a JSON API under ``/api/``.

Routes:

- ``GET /``: the page (one HTML file, inline CSS and JS, no build step, nothing fetched from elsewhere);
- ``GET /api/summary``: counts per status, per type and status; the session, classes and types;
- ``GET /api/findings?type=&class=&status=&offset=0&limit=50``: findings in rank order, filtered (comma-separated
  values; status ``pending`` for no decision), with ``total``;
- ``GET /api/findings/{key}``: one finding (404 for an unknown key) and ``GET /api/findings/{key}/crop.png?size=``;
- ``POST /api/findings/{key}/decision`` ``{"status": "accepted"|"rejected"|"skipped", "label", "note", "reviewer"}``:
  committed before the answer (422 for a bad status or label);
- ``GET /api/changes``: what applying the decisions so far would do (the change log);
- ``GET /api/decisions[?history=true]``: the decisions as JSON (``download=true``: as a file).

Errors are JSON ``{"error": message, "detail": ...}``: 404 for an unknown finding, 422 for bad input, 503 when the
database fails (``StoreError``). Requests must name the host the server listens on, ``localhost`` or ``127.0.0.1``
(``Host`` header; others get 400): a web page elsewhere can't reach the API through a DNS name rebound to this
machine.
"""

from typing import TYPE_CHECKING, Any

from maslow.errors import MaslowError, require

if TYPE_CHECKING:
    from fastapi import FastAPI

    from maslow.ui.state import Review


def create_app(review: "Review", *, title: str = "maslow review", host: str = "127.0.0.1") -> "FastAPI":
    """The FastAPI app serving ``review``, to be served on ``host`` (the names requests may give as their host:
    ``host``, ``localhost`` and ``127.0.0.1``; any for a wildcard ``host``, ``0.0.0.0`` or ``::``, which serves
    every address of the machine).

    Raises:
        MissingDependencyError: FastAPI is not installed (``pip install 'maslow[serve]'``).
    """
    require("fastapi", "serve")
    from fastapi import FastAPI, Query, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from pydantic import BaseModel, Field
    from starlette.exceptions import HTTPException
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    from maslow.store.reviews import StoreError
    from maslow.ui.page import render_page
    from maslow.ui.state import FILTER_STATUSES, MAX_LIMIT, NotFound

    class DecisionIn(BaseModel):
        status: str = Field(description="accepted, rejected or skipped")
        label: str | None = Field(None, description="the class chosen (wrong_class, ambiguous, missing)")
        note: str = ""
        reviewer: str = ""

    # no Swagger page: it loads its scripts from a CDN; the schema is at /api/openapi.json
    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url="/api/openapi.json")
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=_allowed_hosts(host))

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
        return HTMLResponse(render_page(title, review.summary(), review.page(limit=50)))

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
        review.item(key)  # 404 for an unknown key
        png = review.crop_png(key, size)
        if png is None:
            return error(404, f"finding {key}: no crop (an image that can't be read, or no image)")
        return Response(png, media_type="image/png", headers={"Cache-Control": "max-age=3600"})

    @app.post("/api/findings/{key}/decision", response_model=None)
    def decide(key: int, body: DecisionIn) -> Any:
        if body.status not in FILTER_STATUSES[1:]:
            return error(422, f"status must be one of {', '.join(FILTER_STATUSES[1:])}, got {body.status!r}")
        d = review.decide(key, body.status, label=body.label or None, note=body.note, reviewer=body.reviewer)
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


def _allowed_hosts(host: str) -> list[str]:
    """The ``Host`` names a request may give (an IPv6 address also in brackets, as a Host header writes it)."""
    if host in ("0.0.0.0", "::", ""):
        return ["*"]
    names = {host.lower(), "localhost", "127.0.0.1"}
    if ":" in host:
        names.add(f"[{host.lower()}]")
    return sorted(names)
