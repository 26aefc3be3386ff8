"""The API does what its OpenAPI document says (serving/http.py, serving/api_models.py), and
every host builds it from its configuration (serving/ray_app.py, serving/local.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import types

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from configs.loader import DEFAULT_DIR, load_config
from configs.schema import AuthSettings
from liftgate.core.home import Home
from serving import ray_app
from serving.access import Access, roles_for
from serving.actions import ActionService
from serving.api_keys import ADMIN, APP
from serving.consent_http import ConsentUpdates
from serving.events import EventService
from serving.http import METRICS_TYPE, api_for

CONFIG = load_config()
ACTION_IDS = [action.id for action in CONFIG.actions.actions]
# An outcome's ts must fall in a window around its decision's time and now, and its value
# within its event's bounds; a decision needs a candidate eligible for that customer (rules of
# actions.yaml): rules of the data, not of its shape, so a schema-valid body may get a 422
# that names the field. Every other check holds as it is.
DATA_RULES = {"positive_data_acceptance": {"expected-statuses": ["2xx", 422]}}
# A commit of an action is checked against the state (the decision, its offer, consent, caps:
# a 409 naming the check) and its TTL against the configured maximum (a 422); an action id
# a generator makes up is no action (a 404).
ACTION_RULES = {"positive_data_acceptance": {"expected-statuses": ["2xx", 409, 422]}}
UNKNOWN_ID = {"positive_data_acceptance": {"expected-statuses": ["2xx", 404]}}
CONFORMANCE = schemathesis.Config.from_dict(
    {
        "operations": [
            {"include-path": "/v1/outcomes", "checks": DATA_RULES},
            {"include-path": "/v1/decide", "checks": DATA_RULES},
            {"include-path": "/v1/actions", "checks": ACTION_RULES},
            {"include-path": "/v1/actions/{action_id}", "checks": UNKNOWN_ID},
            # A consent change dated in the future is refused (it would outrank every later
            # one): a rule of the data, a 422 naming `ts`.
            {"include-path": "/v1/consent/{customer_id}", "checks": DATA_RULES},
            # An event's ts must lie within the outcomes' bounds around now: a 422 naming `ts`.
            {"include-path": "/v1/events", "checks": DATA_RULES},
        ]
    }
)


@pytest.fixture
def api(make_service, tmp_path):
    """The configured API over the in-process service, behind API keys."""
    api = api_for(CONFIG)
    api.state.service = make_service()
    api.state.actions = ActionService.for_home(
        CONFIG, Home(tmp_path), api.state.service.metrics, log=None
    )
    api.state.consent = ConsentUpdates.for_home(Home(tmp_path))
    api.state.events = EventService.for_home(
        CONFIG, Home(tmp_path), api.state.service.metrics, log=None
    )
    api.state.access = Access.for_home(AuthSettings(), Home(tmp_path), environ={})
    yield api
    api.state.actions.close()
    api.state.consent.close()
    api.state.events.close()


@pytest.fixture
def keys(tmp_path, key_headers) -> dict[str, dict[str, str]]:
    """The headers of an app key and of an admin key (between them, every operation)."""
    return {role: key_headers(Home(tmp_path), role) for role in (APP, ADMIN)}


def headers_for(path: str, keys: dict[str, dict[str, str]]) -> dict[str, str]:
    roles = roles_for(path)
    if roles is None:
        return {}
    return keys[APP] if APP in roles else keys[ADMIN]


def decide_field(document: dict, name: str, kind: str) -> dict:
    """The schema the decide body gives field `name` when it is not null."""
    body = document["paths"]["/v1/decide"]["post"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    return next(s for s in schema["properties"][name]["anyOf"] if s["type"] == kind)


def test_the_openapi_decide_body_is_what_the_configuration_takes() -> None:
    """The catalogue's action ids for `candidates`; for `context`, only the contract's
    features with source: request (`device` here), with their values."""
    features = [
        f.model_copy(update={"source": "request"}) if f.name == "device" else f
        for f in CONFIG.features.features
    ]
    config = dataclasses.replace(
        CONFIG, features=CONFIG.features.model_copy(update={"features": features})
    )
    document = api_for(config).openapi()
    candidates = decide_field(document, "candidates", "array")
    assert candidates["items"] == {"type": "string", "enum": ACTION_IDS}
    assert candidates["maxItems"] == CONFIG.serving.max_candidates
    context = decide_field(document, "context", "object")
    device = next(f for f in features if f.name == "device")
    assert context["properties"] == {"device": {"type": "string", "enum": device.categories}}
    assert context["additionalProperties"] is False


def test_an_outcome_ts_is_an_rfc_3339_string_only(api, keys) -> None:
    with TestClient(api, headers=keys[APP]) as client:
        for ts in (1_767_225_600, "1767225600", 1.5):
            answer = client.post(
                "/v1/outcomes", json={"decision_id": "d", "event": "conversion", "ts": ts}
            )
            assert answer.status_code == 422, ts
            assert [e["loc"] for e in answer.json()["detail"]] == [["body", "ts"]]
        ok = {"decision_id": "d", "event": "conversion", "ts": "2026-05-01T12:00:00Z"}
        assert client.post("/v1/outcomes", json=ok).status_code in (200, 422)  # the window


def test_metrics_documents_the_content_type_it_answers(api, keys) -> None:
    documented = api.openapi()["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert METRICS_TYPE in documented
    with TestClient(api, headers=keys[ADMIN]) as client:
        answered = client.get("/metrics").headers["content-type"]
    assert answered.startswith(METRICS_TYPE)


@pytest.mark.filterwarnings("ignore:coroutine .*__del__' was never awaited:RuntimeWarning")
def test_the_ray_ingress_serves_the_api_of_its_configuration(tmp_path, monkeypatch) -> None:
    """Built by the replica (Serve calls `__serve_build_asgi_app__` after `__init__`), from
    the configuration the replica loads: its body-size limit and its catalogue."""
    directory = tmp_path / "configs"
    shutil.copytree(DEFAULT_DIR, directory, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    serving_yaml = directory / "serving.yaml"
    serving_yaml.write_text(
        serving_yaml.read_text().replace("max_body_bytes: 16384", "max_body_bytes: 1024")
    )
    service = types.SimpleNamespace(metrics=None)  # what build_action_service is given
    monkeypatch.setattr(ray_app, "build_service", lambda *args, **kwargs: (service, None))
    monkeypatch.setattr(ray_app, "build_action_service", lambda *args, **kwargs: None)
    monkeypatch.setattr(ray_app, "build_event_service", lambda *args, **kwargs: None)
    monkeypatch.setattr(ray_app, "install", lambda *args: None)
    ingress = object.__new__(ray_app.DecisionIngress)  # as Serve makes a replica
    asyncio.run(ingress.__init__(str(directory), str(tmp_path / "home")))
    api = ingress.__serve_build_asgi_app__()
    api.state.access = Access.off()
    with TestClient(api) as client:
        too_large = client.post("/v1/decide", content=b"{" + b" " * 1_100 + b"}")
    assert too_large.status_code == 413
    assert "larger than 1024 bytes" in too_large.json()["detail"][0]["msg"]
    assert decide_field(api.openapi(), "candidates", "array")["items"]["enum"] == ACTION_IDS


def run_schemathesis(operation, mode, headers: dict[str, str]) -> None:
    """20 generated requests of `operation`, each answer through every built-in check."""

    @settings(
        max_examples=20,
        deadline=None,
        database=None,
        derandomize=True,  # the same examples on every run: CI does not flake
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(mode))
    def conforms(case) -> None:
        case.call_and_validate(headers=headers)

    conforms()


@pytest.mark.parametrize(
    "mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
)
def test_schemathesis_finds_no_difference_between_the_api_and_its_openapi(api, keys, mode) -> None:
    schema = schemathesis.openapi.from_asgi(
        "/openapi.json", api, config=CONFORMANCE, headers=keys[ADMIN]
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {
        "/v1/decide",
        "/v1/outcomes",
        "/v1/actions",
        "/v1/actions/{action_id}",
        "/v1/consent/{customer_id}",
        "/v1/events",
        "/metrics",
    }
    for operation in operations:
        if mode == schemathesis.GenerationMode.NEGATIVE and not operation.body:
            continue  # nothing to send that the schema forbids
        run_schemathesis(operation, mode, headers_for(operation.path, keys))
