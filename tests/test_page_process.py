"""Pages parsed in helper processes (``framework.engine.page_process``) against the reader
threads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
from conftest import RUNNER, messages, run_cli

from framework.declarative.formats import compile_plan
from framework.engine import page_process
from framework.errors import ConnectorError


def final_states(output: list[dict]) -> dict[str, dict]:
    return {m["state"]["stream"]["stream_descriptor"]["name"]: m["state"]["stream"]["stream_state"]
            for m in output if m["type"] == "STATE"}


def test_helpers_write_what_the_reader_threads_would(make_sandbox, write_json) -> None:
    store = make_sandbox("--customers", "700", "--orders", "300", "--products", "60",
                         "--seed", "14")
    store.admin("POST", "mutate", {"create": 90})  # a block of one second, over a page
    config = write_json(store.config(page_size=50))
    runs = {}
    for helpers in ("0", "2"):
        result = run_cli("runner", "read", "bigcommerce", "--config", str(config),
                         env={"TAJO_PAGE_PROCESS": helpers})
        assert result.returncode == 0, result.stderr.decode()
        output = messages(result.stdout)
        data = Counter((m["record"]["stream"], orjson.dumps(m["record"]["data"],
                                                            option=orjson.OPT_SORT_KEYS))
                       for m in output if m["type"] == "RECORD")
        runs[helpers] = data, final_states(output)
    (threads, threads_state), (helpers, helpers_state) = runs["0"], runs["2"]
    assert helpers == threads
    assert {stream for stream, _ in helpers} >= {"customers", "orders", "order_products",
                                                 "products", "store"}
    assert max(helpers.values()) == 1  # no record twice
    assert helpers_state == threads_state


def test_a_helper_that_dies_ends_the_read_in_one_line(make_sandbox, write_json) -> None:
    store = make_sandbox("--customers", "5000", "--seed", "15", "--latency-ms", "40")
    config = write_json(store.config(page_size=50))
    read = subprocess.Popen([RUNNER, "read", "bigcommerce", "--config", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    children: list[int] = []
    deadline = time.monotonic() + 20
    while len(children) < 2 and time.monotonic() < deadline:
        tasks = Path(f"/proc/{read.pid}/task")
        children = [int(pid) for task in (tasks.iterdir() if tasks.exists() else [])
                    for pid in (task / "children").read_text().split()]
        time.sleep(0.05)
    assert len(children) == 2, "the read did not start its two helper processes"
    os.kill(children[0], signal.SIGKILL)
    _, stderr = read.communicate(timeout=60)
    lines = [line for line in stderr.decode().splitlines() if "parsing pages" in line]
    assert read.returncode == 1, stderr.decode()
    assert lines and "ended (exit code -9); run again, or set TAJO_PAGE_PROCESS=0" in lines[0]


def test_a_helper_returns_lines_skeletons_and_the_pages_errors() -> None:
    recipe = page_process.Recipe(
        stream="customers", where="https://api.example/v3/customers", records_path="data",
        total_path="meta.pagination.total", plan=compile_plan({"properties": {}}),
        copy_fields={}, added={"store_hash": "s1"}, keys=("id",))
    helpers = page_process.PageProcess({1: recipe}, 1)
    try:
        page = helpers.parse(1, json.dumps({"data": [{"id": 2}, {"id": 1}],
                                            "meta": {"pagination": {"total": 9}}}).encode(),
                             "customers")
        assert [s["id"] for s in page.skeletons] == [2, 1] and page.total == 9
        assert page.meta == {"data": None, "meta": {"pagination": {"total": 9}}}
        only_second = page.lines_of([page.skeletons[1]])
        assert json.loads(only_second)["record"]["data"] == {"id": 1, "store_hash": "s1"}
        with pytest.raises(ConnectorError, match="answered with a body that is not valid JSON"):
            helpers.parse(1, b"<html>busy</html>", "customers")
        with pytest.raises(ConnectorError, match="without a list of records at 'data'"):
            helpers.parse(1, b'{"data": 3}', "customers")
    finally:
        helpers.close()


def test_no_helpers_on_one_cpu_or_when_turned_off() -> None:
    probe = ("import os, sys\n"
             "os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}) if sys.argv[1] == '1' "
             "else None\n"
             "from framework.engine import page_process\n"
             "helpers = page_process.start({1: None})\n"
             "print(0 if helpers is None else len(helpers._all))\n"
             "helpers and helpers.close()\n")
    env = {k: v for k, v in os.environ.items() if k != "TAJO_PAGE_PROCESS"}

    def helpers(cpus: str, setting: str | None = None) -> int:
        extra = {"TAJO_PAGE_PROCESS": setting} if setting is not None else {}
        result = subprocess.run([sys.executable, "-c", probe, cpus], capture_output=True,
                                env={**env, **extra}, timeout=60, check=True)
        return int(result.stdout)

    assert helpers("1") == 0
    assert helpers("all") == (2 if len(os.sched_getaffinity(0)) > 1 else 0)
    assert helpers("all", "0") == 0 and helpers("1", "3") == 3
