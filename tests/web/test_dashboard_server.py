"""The dashboard's app: the token on every request, its API, the CSV download, the page needs no network."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from test_dashboard_data import SETTINGS, add, write_store

from afterlearner.cli import build_parser
from afterlearner.dashboard import server
from afterlearner.dashboard.server import Stores, create_app
from afterlearner.online.server import new_token
from afterlearner.store import Evaluation, Store


@pytest.fixture
def dashboard(tmp_path: Path) -> tuple[TestClient, dict[str, str], Store]:
    writer = write_store(tmp_path / "a.sqlite", [0.8, 0.5, None, 0.3])
    write_store(tmp_path / "b.sqlite", [0.9, 0.7], settings={"optimizer": "TwoPointsDE"}).close()
    stores = Stores([tmp_path / "a.sqlite", tmp_path / "b.sqlite", tmp_path / "later.sqlite"])
    token = new_token()
    yield TestClient(create_app(stores, token)), {"Authorization": f"Bearer {token}"}, writer
    stores.close()
    writer.close()


@pytest.mark.parametrize("path", ["/", "/api/runs", "/api/series?run=0-0", "/api/stores/0/csv", "/nothing"])
def test_every_request_needs_the_token(dashboard: tuple, path: str) -> None:
    client, _, _ = dashboard
    for headers in ({}, {"Authorization": "Bearer wrong-token-wrong-token"}):
        response = client.get(path, headers=headers)
        assert response.status_code == 401 and "access token" in response.json()["error"]
        assert response.headers["cache-control"] == "no-store"


def test_the_page_carries_its_chart_library_and_asks_for_nothing_else(dashboard: tuple) -> None:
    client, auth, _ = dashboard
    page = client.get("/", headers=auth)
    assert page.status_code == 200 and "<title>afterlearner dashboard</title>" in page.text
    assert "var uPlot=function()" in page.text and ".uplot" in page.text  # inlined: no request, no CDN
    assert (
        "<script src" not in page.text
        and "<link" not in page.text
        and "http" not in page.text.split("/*!")[0]
    )
    assert "default-src 'none'" in page.headers["content-security-policy"]


def test_runs_lists_every_store_and_the_ones_not_there_yet(dashboard: tuple) -> None:
    client, auth, _ = dashboard
    stores = client.get("/api/runs", headers=auth).json()["stores"]
    assert [s["name"] for s in stores] == ["a.sqlite", "b.sqlite", "later.sqlite"]
    a, b, later = stores
    assert (
        a["task"] == "synthetic"
        and "optimizer OnePlusOne" in a["settings"]
        and "5 ℵ-scalars" in a["settings"]
    )
    assert a["export"].startswith("afterlearner export ") and a["export"].endswith("--out best.safetensors")
    (run,) = a["runs"]
    assert (run["key"], run["evaluations"], run["failures"], run["best"]) == ("0-0", 4, 1, 0.3)
    assert b["runs"][0]["key"] == "1-0" and "TwoPointsDE" in b["settings"]
    assert later["runs"] == [] and "not there yet" in later["problem"]


def test_series_are_incremental_and_share_one_axis(dashboard: tuple) -> None:
    client, auth, writer = dashboard
    first = client.get("/api/series", params={"run": ["0-0@", "1-0@"]}, headers=auth).json()
    assert first["runs"]["0-0"]["idx"] == [0, 1, 2, 3] and first["runs"]["1-0"]["loss"] == [0.9, 0.7]
    assert (
        first["axis"]["scale"] == "linear"
        and first["axis"]["limits"][0] < 0.3 < 0.9 < first["axis"]["limits"][1]
    )
    add(writer, [0.25])
    cursor = first["runs"]["0-0"]["cursor"]
    more = client.get("/api/series", params={"run": f"0-0@{cursor}"}, headers=auth).json()
    assert more["runs"]["0-0"]["idx"] == [4] and more["runs"]["0-0"]["loss"] == [0.25]
    for bad in ("9-0@", "x@", "0-0-0@"):
        assert client.get("/api/series", params={"run": bad}, headers=auth).status_code == 404


def test_parameters_and_csv(dashboard: tuple, tmp_path: Path) -> None:
    client, auth, _ = dashboard
    result = client.get("/api/parameters", params={"run": "0-0"}, headers=auth).json()
    assert result["best_index"] == 3 and len(result["values"]) == 5 and len(result["charts"]["values"]) == 5
    assert client.get("/api/parameters", params={"run": "2-0"}, headers=auth).status_code == 404
    response = client.get("/api/stores/0/csv", headers=auth)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == 'attachment; filename="a-evaluations.csv"'
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [row["loss"] for row in rows] == ["0.8", "0.5", "", "0.3"] and "fc.weight[1,:]" in rows[0]
    assert client.get("/api/stores/2/csv", headers=auth).status_code == 404
    assert client.get("/api/stores/7/csv", headers=auth).status_code == 404


def test_a_store_created_after_the_start_appears(dashboard: tuple, tmp_path: Path) -> None:
    client, auth, _ = dashboard
    write_store(tmp_path / "later.sqlite", [1.0]).close()
    later = client.get("/api/runs", headers=auth).json()["stores"][2]
    assert later["problem"] is None and later["runs"][0]["key"] == "2-0"


def test_ten_thousand_evaluations_are_served_quickly(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "big.sqlite")
    store.bind(SETTINGS)
    store.start_run(0, seed=1)
    rng = np.random.default_rng(0)
    store.record_batch(
        [Evaluation(0, i, rng.normal(size=5), float(rng.random()), "ok", None, 0.0) for i in range(10_000)]
    )
    store.close()
    stores, token = Stores([tmp_path / "big.sqlite"]), new_token()
    client = TestClient(create_app(stores, token))
    auth = {"Authorization": f"Bearer {token}"}
    started = time.perf_counter()
    series = client.get("/api/series", params={"run": "0-0@"}, headers=auth).json()
    runs = client.get("/api/runs", headers=auth).json()
    parameters = client.get("/api/parameters", params={"run": "0-0"}, headers=auth).json()
    elapsed = time.perf_counter() - started
    assert (
        len(series["runs"]["0-0"]["idx"]) == 10_000 and runs["stores"][0]["runs"][0]["evaluations"] == 10_000
    )
    assert len(parameters["charts"]["idx"]) == 10_000
    assert elapsed < 5.0, f"{elapsed:.2f} s to serve 10,000 evaluations"
    stores.close()


def test_the_command_line() -> None:
    args = build_parser().parse_args(["dashboard", "a.sqlite", "b.sqlite", "--port", "0", "--no-browser"])
    assert args.stores == ["a.sqlite", "b.sqlite"] and args.port == 0 and args.host == "127.0.0.1"
    assert args.no_browser and args.handler.__module__ == "afterlearner.cli.dashboard"


def test_keys_name_only_the_stores_given() -> None:
    assert server.parse_key("1-3", 2) == (1, 3)
    for key in ("2-0", "-1-0", "1", "a-b", "1-", ""):
        assert server.parse_key(key, 2) is None
