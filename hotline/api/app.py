"""The FastAPI application served inside ``hotline serve``.

For now it carries the health endpoint a load balancer or ``make run`` probes; the agent API
(authenticated, role-checked) arrives with the queue issue. The health answer names no caller,
lawyer or configuration detail, which is why it needs no token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from hotline import __version__


def create_app(status: Callable[[], dict[str, Any]]) -> FastAPI:
    """Build the app; ``status`` reports the live components (flows loaded, database)."""
    app = FastAPI(title="hotline12348", version=__version__,
                  description="12348 公共法律服务热线 API")

    @app.get("/health", tags=["运维"], summary="健康检查")
    def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__, **status()}

    return app
