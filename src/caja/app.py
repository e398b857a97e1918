"""The ASGI application: routers, error handlers and the lifespan of the container."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi_offline import FastAPIOffline

from caja import __version__, heap, metrics
from caja.api import devtools, errors, network, openapi, public
from caja.api import metrics as metrics_route
from caja.api.in_flight import CountInFlight
from caja.api.limits import BodySizeLimit
from caja.api.merchant import customers, events, orders, payment_sources, payment_test, webhook_keys, webhooks
from caja.api.network_fast import NetworkFastPath
from caja.api.request_metrics import RequestMetrics
from caja.bootstrap import Container
from caja.delivery.priority import Foreground
from caja.web import cashier, dashboard, slips

DESCRIPTION = """
Caja speaks Conekta's API v2.x for Mexico's offline rails: reusable cash references paid at
convenience stores, reusable SPEI CLABEs and cash payouts.

Authenticate with a private API key, as `Authorization: Bearer key_...` or HTTP Basic with the
key as user name. Name the API version in `Accept: application/vnd.conekta-v2.3.0+json`
(2.0.0 to 2.3.0). Every success is HTTP 200; every error is a Conekta error object.
"""


MAX_BODY_BYTES = 1024 * 1024


def create_app(container: Container) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await container.start()
        heap.freeze_start_up_objects()
        try:
            yield
        finally:
            await container.close()

    # The docs pages load Swagger UI and ReDoc from the package, not a CDN: Caja runs offline.
    app = FastAPIOffline(
        title="Caja",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url="/redoc",
        openapi_url="/openapi.json",
        static_url="/_caja/docs-assets",
        max_body_size=MAX_BODY_BYTES,
        # A redirect would drop a POST body; an unknown path gets a Conekta 404 instead.
        redirect_slashes=False,
    )
    app.state.container = container
    # Outside FastAPI's own stack, so an oversized Content-Length gets a Conekta error object
    # before FastAPI's body limit (kept for chunked bodies) answers a bare 413; inside that, the
    # store network's two busiest calls skip the framework's layers (caja.api.network_fast).
    # Outside those, each request counted and timed by route (/metrics); outermost of all, the
    # count of requests in flight that background jobs give way to.
    build_stack = app.build_middleware_stack
    foreground = container.foreground = Foreground()
    metrics.count_in_flight(lambda: foreground.in_flight)
    app.build_middleware_stack = lambda: CountInFlight(  # type: ignore[method-assign]
        RequestMetrics(
            BodySizeLimit(NetworkFastPath(build_stack(), container, MAX_BODY_BYTES), MAX_BODY_BYTES)
        ),
        foreground,
    )
    errors.install(app)
    openapi.install(app)
    _install_routes(
        app,
        network.router,
        customers.router,
        payment_sources.router,
        orders.router,
        payment_test.router,
        webhooks.router,
        webhook_keys.router,
        events.router,
        public.router,
        metrics_route.router,
        slips.router,
        devtools.router,
        dashboard.router,
        cashier.router,
    )
    return app


def create_metrics_app(container: Container) -> FastAPI:
    """``caja worker --metrics-port``: ``GET /metrics`` alone, for a process that serves no API."""
    app = FastAPI(title="Caja worker", version=__version__, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.container = container
    errors.install(app)
    _install_routes(app, metrics_route.router)
    return app


def _install_routes(app: FastAPI, *routers: APIRouter) -> None:
    """Routes flat on the app, busiest first, the documentation pages last.

    Matching walks the routes in order, and FastAPI's ``include_router`` wraps each router in
    one more matching layer: measured, a request to the last of ~30 included routes spent
    ~200 µs just being routed. Flat and ordered, the common calls match within a few tries.
    """
    builtin = list(app.router.routes)
    app.router.routes[:] = [route for router in routers for route in router.routes] + builtin
