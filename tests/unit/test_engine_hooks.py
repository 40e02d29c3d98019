"""Playbook hooks in a run: HTTP checks (a real local server), commands without a shell, waits, approvals."""

from __future__ import annotations

import http.server
import socket
import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from adapters.noop.estate import NoopEstate
from migrate.core.errors import AdapterError
from migrate.engine import CancelToken, Playbook, Runner, load_playbook
from migrate.engine.hooks import HookError, run_hook
from migrate.engine.playbook import Hook
from migrate.engine.timing import Interrupted
from tests.unit.test_engine_helpers import FakeClock, _quiet_logs, fast_settings, make_plan, open_journal, registry

__all__ = ["_quiet_logs"]


class _Handler(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_response(503 if "down" in self.path else 404 if "gone" in self.path else 200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    """A local HTTP server: 200 everywhere except paths containing `down` (503)."""
    _Handler.hits = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _book(hooks: dict[str, Any]) -> Playbook:
    data = load_playbook("noop").model_dump(mode="json")
    data["hooks"] = hooks
    return Playbook.model_validate(data)


VARS = {"run_id": "r", "wave": "1", "vm": "vm-1", "vm_name": "web-1"}


def test_http_check(server: str) -> None:
    """An HTTP check passes on the expected status and fails, naming the status, otherwise; a 503 or an
    unreachable server is a retryable failure (the engine tries the step again)."""
    ok = Hook.model_validate({"http": {"url": server + "/drain/${vm_name}"}})
    assert run_hook(ok, VARS, clock=FakeClock(), cancel=CancelToken(), approver=None)["status"] == 200
    assert _Handler.hits == ["/drain/web-1"]
    down = Hook.model_validate({"http": {"url": server + "/down", "expect_status": 200}})
    with pytest.raises(AdapterError, match="status 503, expected 200") as busy:
        run_hook(down, VARS, clock=FakeClock(), cancel=CancelToken(), approver=None)
    assert busy.value.retryable
    gone = Hook.model_validate({"http": {"url": server + "/gone", "expect_status": 200}})
    with pytest.raises(HookError, match="status 404, expected 200"):
        run_hook(gone, VARS, clock=FakeClock(), cancel=CancelToken(), approver=None)
    unreachable = Hook.model_validate({"http": {"url": "http://127.0.0.1:9/", "timeout": 2}})
    with pytest.raises(AdapterError, match="ConnectionError") as refused:
        run_hook(unreachable, VARS, clock=FakeClock(), cancel=CancelToken(), approver=None)
    assert refused.value.retryable


def test_tcp_check_waits_for_the_port(server: str) -> None:
    """A TCP check passes once the port accepts; a closed port fails after the timeout, retried each second."""
    port = int(server.rsplit(":", 1)[1])
    up = Hook.model_validate({"tcp": {"host": "127.0.0.1", "port": port}})
    assert run_hook(up, VARS, clock=FakeClock(), cancel=CancelToken(), approver=None)["waited"] == 0
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    free = closed.getsockname()[1]
    closed.close()
    clock = FakeClock()
    down = Hook.model_validate({"tcp": {"host": "127.0.0.1", "port": free, "timeout": 3}})
    with pytest.raises(HookError, match=f"127.0.0.1:{free}: not accepting after 3 s"):
        run_hook(down, VARS, clock=clock, cancel=CancelToken(), approver=None)
    with pytest.raises(ValueError, match="exactly one of http, tcp, command, wait, approval"):
        Hook.model_validate({"tcp": {"host": "h", "port": 1}, "wait": {"seconds": 1}})


def test_command_runs_without_a_shell(tmp_path: Path) -> None:
    """Arguments reach the program as given (no shell expansion); a non-zero exit fails the hook."""
    out = tmp_path / "out.txt"
    script = "import sys; open(sys.argv[1], 'w').write('|'.join(sys.argv[2:]))"
    argv = [sys.executable, "-c", script, str(out), "${vm}", "$$HOME;ls", "*"]
    hook = Hook.model_validate({"command": {"argv": argv}})
    outputs = run_hook(hook, VARS, clock=FakeClock(), cancel=CancelToken(), approver=None)
    assert out.read_text() == "vm-1|$HOME;ls|*" and outputs["returncode"] == 0
    failing = Hook.model_validate({"command": {"argv": [sys.executable, "-c", "import sys; sys.exit('nope')"]}})
    with pytest.raises(HookError, match="exited 1: nope"):
        run_hook(failing, VARS, clock=FakeClock(), cancel=CancelToken(), approver=None)
    missing = Hook.model_validate({"command": {"argv": [str(tmp_path / "no-such-program")]}})
    with pytest.raises(HookError, match="no such program"):
        run_hook(missing, VARS, clock=FakeClock(), cancel=CancelToken(), approver=None)


def test_wait_and_approval() -> None:
    """A wait sleeps on the clock (cut short by a cancel); an approval asks the approver."""
    clock = FakeClock()
    wait = Hook.model_validate({"wait": {"seconds": 90}})
    assert run_hook(wait, VARS, clock=clock, cancel=CancelToken(), approver=None) == {"waited": 90}
    assert clock.slept == [90]
    stopped = CancelToken()
    stopped.cancel()
    with pytest.raises(Interrupted):
        run_hook(wait, VARS, clock=clock, cancel=stopped, approver=None)
    ask = Hook.model_validate({"approval": {"prompt": "Cut over ${vm_name}?"}})
    prompts: list[str] = []

    def approver(prompt: str, variables: Mapping[str, str]) -> bool:
        prompts.append(prompt)
        return variables["vm"] == "vm-1"

    assert run_hook(ask, VARS, clock=clock, cancel=CancelToken(), approver=approver)["approved"] is True
    with pytest.raises(HookError, match="not approved"):
        run_hook(ask, {**VARS, "vm": "vm-2"}, clock=clock, cancel=CancelToken(), approver=approver)
    with pytest.raises(HookError, match="nobody can approve"):
        run_hook(ask, VARS, clock=clock, cancel=CancelToken(), approver=None)
    assert prompts == ["Cut over web-1?", "Cut over web-1?"]


def test_hooks_in_a_run(server: str, tmp_path: Path) -> None:
    """Wave and VM hooks run at their points; a blocking failure fails its VM, a non-blocking one does not."""
    marker = tmp_path / "marks"
    marker.mkdir()
    book = _book({
        "wave": {"pre": [{"approval": {"prompt": "Start wave ${wave}?"}}],
                 "post": [{"http": {"url": server + "/wave/${wave}/done"}}]},
        "vm": {"pre": [{"http": {"url": server + "/vm/${vm}"}},
                       {"command": {"argv": [sys.executable, "-c", "import sys; open(sys.argv[1], 'w')",
                                             str(marker) + "/${vm}"]}}],
               "post": [{"http": {"url": server + "/gone/${vm}"}, "blocking": False},
                        {"http": {"url": server + "/up/${target_id}"}}]},
    })
    plan = make_plan([3])
    asked: list[str] = []

    def approver(prompt: str, variables: Mapping[str, str]) -> bool:
        asked.append(prompt)
        return True

    settings = fast_settings(approver=approver)
    with open_journal(tmp_path / "j.db") as journal:
        result = Runner(journal, registry(), adapters=NoopEstate(plan.vms).adapters(),
                        settings=settings).start(plan, {"noop": book})
        failed_hooks = [s for s in journal.steps(result.run_id) if s.status == "failed"]
        wave_steps = [s.step for s in journal.steps(result.run_id, "wave")]
    assert result.status == "completed" and asked == ["Start wave 1?"]
    assert sorted(p.name for p in marker.iterdir()) == ["vm-0000", "vm-0001", "vm-0002"]
    assert sorted(h for h in _Handler.hits if not h.startswith("/up/")) == sorted(
        ["/vm/vm-0000", "/vm/vm-0001", "/vm/vm-0002", "/gone/vm-0000", "/gone/vm-0001", "/gone/vm-0002",
         "/wave/1/done"])
    assert sorted(h for h in _Handler.hits if h.startswith("/up/")) == ["/up/vm-1", "/up/vm-2", "/up/vm-3"]
    assert {s.step for s in failed_hooks} == {"hook:post:0:http"} and len(failed_hooks) == 3
    assert wave_steps == ["hook:pre:0:approval", "hook:post:0:http"]


def test_target_placeholders_only_after_cutover() -> None:
    """${target_id} and ${target_ip} are known in VM post hooks only."""
    _book({"vm": {"post": [{"tcp": {"host": "${target_ip}", "port": 22}}]}})
    with pytest.raises(ValueError, match="target_ip"):
        _book({"vm": {"pre": [{"tcp": {"host": "${target_ip}", "port": 22}}]}})


def test_blocking_vm_hook_failure_fails_the_vm(server: str, tmp_path: Path) -> None:
    """A failing blocking pre-hook fails its VM before cutover; the other VMs go on."""
    book = _book({"vm": {"pre": [{"http": {"url": server + "/${vm_name}"}}]}})
    plan = make_plan([3])
    plan = plan.model_copy(update={"vms": [vm.model_copy(update={"name": "gone" if vm.id == "vm-0001" else vm.name})
                                           for vm in plan.vms]})
    estate = NoopEstate(plan.vms)
    with open_journal(tmp_path / "j.db") as journal:
        result = Runner(journal, registry(), adapters=estate.adapters(), settings=fast_settings()).start(
            plan, {"noop": book})
        state = journal.vm_states(result.run_id)["vm-0001"]
    assert result.vms == {"completed": 2, "failed": 1}
    assert state.error is not None and state.error["type"] == "HookError" and "404" in state.error["message"]
    assert not [e for e in estate.effects if e["vm"] == "vm-0001"]


def test_failed_wave_hook_fails_the_wave_and_approval_is_asked_once(tmp_path: Path) -> None:
    """A refused wave approval fails the wave (VMs skipped); on retry, only the refused hook asks again."""
    book = _book({"wave": {"pre": [{"wait": {"seconds": 5}}, {"approval": {"prompt": "go?"}}]}})
    plan = make_plan([2])
    answers = [False, True]
    clock = FakeClock()
    settings = fast_settings(clock=clock, approver=lambda prompt, variables: answers.pop(0))
    with open_journal(tmp_path / "j.db") as journal:
        runner = Runner(journal, registry(), adapters=NoopEstate(plan.vms).adapters(), settings=settings)
        first = runner.start(plan, {"noop": book})
        assert first.status == "failed" and first.vms == {"skipped": 2}
        second = runner.resume(retry_failed=True)
    assert second.status == "completed" and answers == [] and clock.slept == [5]
