"""The floor under plain FastAPI + uvicorn, everything in process (topology P):

    .venv/bin/python -m uvicorn --app-dir load_tests/floor plain_app:app \
        --host 127.0.0.1 --port 8100 --no-access-log
"""

from __future__ import annotations

import workload  # load_tests/floor/, beside this file
from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()
BOOSTER = workload.load_booster()
STORE = workload.make_feature_store()


class Request(BaseModel):
    customer_id: str


@app.post("/score")
async def score(request: Request) -> dict:
    return workload.handle(BOOSTER, STORE, request.customer_id)


@app.get("/readyz")
async def readyz() -> dict:
    return {"ready": True}
