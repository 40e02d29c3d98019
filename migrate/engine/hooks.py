"""Playbook hooks: HTTP and TCP checks, commands (argv, never a shell), waits and approvals.

Hooks run as journaled steps like phases (`hook:pre:0:http`...): a finished hook is not run again on
resume, so an approval is asked once; a hook interrupted by a crash runs again, so commands given to
hooks should be safe to repeat.
"""

from __future__ import annotations

import socket
import string
import subprocess
from collections.abc import Callable, Mapping
from typing import Any

import requests

from migrate.core.errors import AdapterError, OperationalError
from migrate.core.faults import RETRYABLE_HTTP, is_transient
from migrate.core.redact import redact_text
from migrate.engine.playbook import Hook
from migrate.engine.timing import CancelToken, Clock, Interrupted

__all__ = ["Approver", "HookError", "hook_step", "run_hook"]

# (prompt, variables) -> approved?
Approver = Callable[[str, Mapping[str, str]], bool]
_TAIL = 2000


class HookError(OperationalError):
    """A hook did not pass."""

    retryable = False


def hook_step(when: str, index: int, hook: Hook) -> str:
    """The journal step name of a hook, e.g. `hook:pre:0:http`."""
    return f"hook:{when}:{index}:{hook.kind}"


def _fill(text: str, variables: Mapping[str, str]) -> str:
    return string.Template(text).substitute(variables)


def _tcp(host: str, port: int, timeout: float, clock: Clock, cancel: CancelToken) -> dict[str, Any]:
    """Connect, retrying every second until `timeout`: a service coming up after a boot passes."""
    waited, last = 0.0, ""
    while True:
        try:
            with socket.create_connection((host, port), timeout=min(5.0, timeout)):
                return {"host": host, "port": port, "waited": waited}
        except OSError as exc:
            last = exc.strerror or type(exc).__name__
        if waited >= timeout:
            raise HookError(f"tcp check {host}:{port}: not accepting after {timeout:g} s ({last})")
        if clock.sleep(1.0, cancel.interrupt):
            raise Interrupted("tcp check cut short by cancel")
        waited += 1.0


def run_hook(hook: Hook, variables: Mapping[str, str], *, clock: Clock, cancel: CancelToken,
             approver: Approver | None) -> dict[str, Any]:
    """Run one hook; its outputs, or HookError (Interrupted if a cancel cut a wait short)."""
    if hook.http is not None:
        url = _fill(hook.http.url, variables)
        where = redact_text(url)
        try:
            response = requests.get(url, timeout=hook.http.timeout, verify=hook.http.verify_tls, allow_redirects=False)
        except requests.RequestException as exc:
            if is_transient(exc):  # a reset or timeout: the step is retried with backoff
                raise AdapterError("http-check", "GET", f"{type(exc).__name__}", retryable=True, endpoint=where,
                                   code=type(exc).__name__) from None
            raise HookError(f"http check {where}: {type(exc).__name__}: {redact_text(str(exc))}") from None
        if response.status_code != hook.http.expect_status:
            if response.status_code in RETRYABLE_HTTP:
                raise AdapterError("http-check", "GET", f"status {response.status_code}, expected "
                                   f"{hook.http.expect_status}", retryable=True, endpoint=where,
                                   code=f"HTTP {response.status_code}")
            raise HookError(f"http check {where}: status {response.status_code}, "
                            f"expected {hook.http.expect_status}")
        return {"url": url, "status": response.status_code}
    if hook.tcp is not None:
        return _tcp(_fill(hook.tcp.host, variables), hook.tcp.port, hook.tcp.timeout, clock, cancel)
    if hook.command is not None:
        argv = [_fill(arg, variables) for arg in hook.command.argv]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=hook.command.timeout, check=False,
                                  stdin=subprocess.DEVNULL)
        except FileNotFoundError:
            raise HookError(f"command {argv[0]!r}: no such program") from None
        except subprocess.TimeoutExpired:
            raise HookError(f"command {argv[0]!r}: still running after {hook.command.timeout:g} s") from None
        except OSError as exc:
            raise HookError(f"command {argv[0]!r}: {exc}") from None
        if proc.returncode != 0:
            raise HookError(f"command {argv[0]!r} exited {proc.returncode}: {proc.stderr.strip()[-_TAIL:]}")
        return {"argv": argv, "returncode": 0, "stdout": proc.stdout[-_TAIL:]}
    if hook.wait is not None:
        if clock.sleep(hook.wait.seconds, cancel.interrupt):
            raise Interrupted("wait hook cut short by cancel")
        return {"waited": hook.wait.seconds}
    assert hook.approval is not None
    prompt = _fill(hook.approval.prompt, variables)
    if approver is None:
        raise HookError(f"approval needed ({prompt!r}) but nobody can approve: run interactively or give an approver")
    if not approver(prompt, variables):
        raise HookError(f"not approved: {prompt}")
    return {"prompt": prompt, "approved": True}
