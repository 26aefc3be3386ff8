"""The BentoML service of `liftgate export bento`: POST /v1/decide for one model version.

The bento's argument `model` (`MODEL_TAG`) is the tag of the BentoML model that holds the bundle
(`serving.bento_bundle`); it is set when the bento is built and kept in it. The route
answers as `liftgate serve` does (`decide_answer`: the same body parsing, 422s naming
the field, the same answer document). BentoML adds its own /healthz, /readyz, /livez and
/metrics.

Environment read at start-up: LIFTGATE_CONSENT_DB (a consent store to read; unset: nobody
has consent) and LIFTGATE_DECISION_LOG (a directory for the decision log; unset: not
logged).
"""

from __future__ import annotations

import os
from pathlib import Path

import bentoml
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from experiments.logs.wal import LogUnavailable
from serving.bento_bundle import BundleInfo, open_bundle
from serving.decide_http import decide_answer
from serving.service import InvalidRequest

CONSENT_DB_ENV = "LIFTGATE_CONSENT_DB"
DECISION_LOG_ENV = "LIFTGATE_DECISION_LOG"

#: The bento argument `model`; unset only where the module is imported without being built
#: into a bento (by doctest collection, say), where a placeholder keeps it importable.
MODEL_TAG = getattr(bentoml.use_arguments(), "model", None) or "liftgate-export-bento-sets-it"
api = FastAPI(title="liftgate (bento)", docs_url=None, redoc_url=None)


def _path(variable: str) -> Path | None:
    value = os.environ.get(variable)
    return Path(value) if value else None


@bentoml.service(name="liftgate_decide", http={"host": "127.0.0.1"})
@bentoml.asgi_app(api, path="/v1")
class LiftgateDecision:
    bundle = bentoml.models.BentoModel(MODEL_TAG)

    def __init__(self) -> None:
        stored = self.bundle
        info = BundleInfo(**{k: stored.info.metadata[k] for k in BundleInfo.__annotations__})
        self.service = open_bundle(
            Path(stored.path), info, _path(CONSENT_DB_ENV), _path(DECISION_LOG_ENV)
        )

    @api.post("/decide")
    async def decide(self, request: Request) -> Response:
        try:
            answer, traceparent = await decide_answer(
                self.service, await request.body(), request.headers.get("traceparent")
            )
        except InvalidRequest as exc:
            return JSONResponse({"detail": exc.errors}, status_code=422)
        except LogUnavailable:  # as `liftgate serve`: a decision not logged is not answered
            detail = "the log cannot be written now: not acknowledged, retry later"
            return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": "1"})
        return Response(answer, media_type="application/json", headers={"traceparent": traceparent})

    @bentoml.on_shutdown
    def close(self) -> None:
        self.service.close()
