"""The dashboard's model pages and ``/api/lineage``, on tests/lineage_data.py's lineage.

churn-xgb/3: churn-sweep-1 (Failed) 0.83 + churn-sweep-2 (Stopped) 0.42 + churn-sweep-3
(produced it) 1.92 = 3.17 to produce, of which 1.25 failed attempts (see tests/lineage_data.py).
"""

from __future__ import annotations

import json
import warnings
from urllib.parse import quote

import pytest
from sqlalchemy import select

from tests.lineage_data import LLM_ARN, NOW, PACKAGE_ARN, make_store
from tracker.report.lineage import find_lineage, lineage_json
from tracker.report.render import json_text
from tracker.store.database import Store
from tracker.store.schema import Job

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's notice about its httpx-based client
    from fastapi.testclient import TestClient

from tracker.web.app import SECURITY_HEADERS, create_app  # noqa: E402


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    store = make_store(tmp_path_factory.mktemp("web-lineage"))
    # What the models collection links: llm-ft-1 is part of llm-ft's lineage.
    with store.session() as session:
        job = session.execute(select(Job).where(Job.name == "llm-ft-1")).scalar_one()
        job.model = "llm-ft"
        session.commit()
    return store


@pytest.fixture(scope="module")
def client(store: Store) -> TestClient:
    return TestClient(create_app(store, clock=lambda: NOW))


def model_id(store: Store, name: str) -> int:
    model = find_lineage(store, name).model
    assert model.id is not None
    return model.id


def job_id(store: Store, name: str, region: str = "us-east-1") -> int:
    with store.session() as session:
        return session.execute(
            select(Job.id).where(Job.name == name, Job.region == region)
        ).scalar_one()


def test_model_page_shows_the_lineage_and_links_each_job(store: Store, client: TestClient) -> None:
    page = client.get(f"/models/{model_id(store, 'churn-xgb/3')}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for name, value in SECURITY_HEADERS.items():
        assert page.headers[name] == value
    text = page.text
    assert '<h1>Model <span id="model-name">churn-xgb/3</span></h1>' in text
    assert "<th>total cost to produce (USD)</th><td>3.17</td>" in text
    assert "<th>cost of failed attempts (USD)</th><td>1.25</td>" in text
    assert "<th>of which failed or stopped</th><td>2</td>" in text
    for name in ("churn-sweep-1", "churn-sweep-2", "churn-sweep-3"):
        assert f'<a href="/jobs/{job_id(store, name)}">{name}</a>' in text
    assert f'/jobs/{job_id(store, "churn-sweep-1", "eu-west-1")}"' not in text
    assert "unrelated" not in text
    assert "<tr class=total><td>TOTAL</td>" in text and '<td class="num">3.17</td>' in text
    assert f'href="/api/lineage?model={quote(PACKAGE_ARN, safe="")}"' in text
    assert "<script" not in text


def test_model_page_by_name_arn_and_escaped_slash(store: Store, client: TestClient) -> None:
    by_id = client.get(f"/models/{model_id(store, 'churn-xgb/3')}").text
    for path in ("/models/churn-xgb/3", "/models/churn-xgb%2F3", f"/models/{PACKAGE_ARN}"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert page.text == by_id, path


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/models/no-such-model", "model &#39;no-such-model&#39;: no collected model"),
        ("/models/dup", "several models have this name; pass an ARN"),
        ("/models/999999", "model &#39;999999&#39;: no collected model"),
    ],
)
def test_model_page_unknown_or_ambiguous_is_a_one_line_404(
    client: TestClient, path: str, message: str
) -> None:
    page = client.get(path)
    assert page.status_code == 404 and message in page.text
    assert page.headers["X-Frame-Options"] == "DENY"
    head = client.head(path)
    assert head.status_code == 404 and head.content == b""


def test_model_page_without_a_producer_says_why(store: Store, client: TestClient) -> None:
    text = client.get("/models/orphan").text
    assert "No collected job produced this model." in text
    assert (
        "no collected producing job" in text
        and "<th>producing job</th><td>none collected</td>" in text
    )


def test_api_lineage_is_the_cli_json(store: Store, client: TestClient) -> None:
    answer = client.get("/api/lineage", params={"model": "churn-xgb/3"})
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    assert answer.text == json_text(lineage_json(find_lineage(store, "churn-xgb/3")))
    data = answer.json()
    assert (data["total_usd"], data["failed_attempts_usd"]) == (3.17, 1.25)
    assert [j["job"] for j in data["jobs"]] == ["churn-sweep-1", "churn-sweep-2", "churn-sweep-3"]


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"model": "nope"}, 404, "model 'nope': no collected model or model package"),
        ({"model": "dup"}, 404, "model 'dup': several models have this name"),
        ({}, 400, "model: expected a model's id, ARN or name"),
        ({"model": "a\x00b"}, 400, "model: a value cannot hold a NUL character"),
    ],
)
def test_api_lineage_errors_are_one_line_json(
    client: TestClient, params: dict[str, str], status: int, message: str
) -> None:
    answer = client.get("/api/lineage", params=params)
    assert answer.status_code == status
    assert answer.json()["error"].startswith(message) and "\n" not in answer.json()["error"]


def test_models_list_links_every_model(store: Store, client: TestClient) -> None:
    page = client.get("/models")
    assert page.status_code == 200
    text = page.text
    assert '<span id="models-count">5</span>' in text and '<a href="/models">Models</a>' in text
    assert f'<a href="/models/{model_id(store, "churn-xgb/3")}">churn-xgb/3</a>' in text
    row = text.split("churn-xgb/3</a>")[1].split("</tr>")[0]
    assert '<td class="num">3</td><td class="num">3.17</td>' in row
    # Two models named dup: linked by ARN only, never both to one page.
    assert ">dup</a>" not in text and "<td>dup</td>" in text
    assert text.count("/models/") >= 6  # nav + five ARN links


def test_models_list_pages(store: Store) -> None:
    paged = TestClient(create_app(store, clock=lambda: NOW, page_rows=2))
    first = paged.get("/models").text
    assert "Rows 1 to 2 of 5 (page 1 of 3)" in first and 'href="/models?page=2"' in first
    assert paged.get("/models", params={"page": 4}).status_code == 404


def test_job_page_links_its_model(store: Store, client: TestClient) -> None:
    text = client.get(f"/jobs/{job_id(store, 'llm-ft-1')}").text
    llm = model_id(store, LLM_ARN)
    assert f'<a id="model-link" href="/models/{llm}">llm-ft</a>' in text
    assert "model-link" not in client.get(f"/jobs/{job_id(store, 'unrelated')}").text


def test_model_api_and_page_are_in_the_openapi_schema(client: TestClient) -> None:
    schema = json.loads(client.get("/api/openapi.json").text)
    assert {"/models", "/models/{model}", "/api/lineage"} <= set(schema["paths"])
    (param,) = schema["paths"]["/api/lineage"]["get"]["parameters"]
    assert (param["name"], param["required"]) == ("model", True)
