"""The quota-floor benchmark keeps working (a tiny store, once; its timings are not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parent / "bench" / "quota_floor.py"


@pytest.mark.e2e
def test_quota_floor_benchmark_reports_every_plan(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, str(BENCH), "--customers", "300", "--orders", "400", "--products",
         "20", "--scale", "0.05", "--plans", "standard,pro", "--json", str(report)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split() == ["plan", "records", "requests", "429s",
                                                     "wall", "s", "floor", "s", "ratio"]
    rows = json.loads(report.read_text())["results"]
    assert [r["plan"] for r in rows] == ["standard", "pro"]
    for row in rows:
        assert row["records"] > 700 and row["requests"] > 5 and row["throttled"] == 0
        assert row["floor_s"] > 0 and row["ratio"] == pytest.approx(
            row["wall_s"] / row["floor_s"], rel=0.05)  # both rounded in the report


WEBHOOKS = Path(__file__).parent / "bench" / "webhooks.py"


@pytest.mark.e2e
def test_webhook_benchmark_reports_latency_and_acknowledgements(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    result = subprocess.run([sys.executable, str(WEBHOOKS), "--samples", "3", "--burst", "300",
                             "--concurrency", "10", "--json", str(report)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("store change -> Brevo: p50 ")
    figures = json.loads(report.read_text())
    assert figures["latency"]["samples"] == 3
    assert 1.0 <= figures["latency"]["p50_s"] <= figures["latency"]["max_s"]
    burst = figures["burst"]
    assert burst["statuses"] == {"200": 300} and burst["stored"] == burst["distinct"] == 300
    assert burst["per_second"] > 0 and burst["p50_ms"] <= burst["p99_ms"]


SUITE = Path(__file__).parent / "bench" / "suite.py"


@pytest.mark.e2e
def test_performance_suite_reports_every_figure(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    result = subprocess.run([sys.executable, str(SUITE), "--sizes", "400", "--runs", "1",
                             "--json", str(report)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines()[0].split()[:3] == ["customers", "read", "rec/s"]
    (row,) = json.loads(report.read_text())["results"]
    assert row["read"]["records"] == 400 and row["read"]["records_per_s"] > 0
    assert row["read"]["peak_rss_mb"] > 10 and row["write"]["peak_rss_mb"] > 10
    assert row["read"]["peak_pss_mb"] >= row["read"]["peak_rss_mb"]
    assert row["sync"]["records"] > 400 + 200
    assert row["sync"]["brevo_requests_per_1000"]["contacts"] > 0
    incremental = row["incremental"]
    assert incremental["changed_customers"] == 4
    assert 4 <= incremental["contacts_sent_to_brevo"] < 400
    assert sum(incremental["bigcommerce_requests"].values()) > 0
