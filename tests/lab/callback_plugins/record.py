# Test-only callback: records every task result as JSON lines so tests can assert on
# `changed`/`failed`/`msg`/`diff` per task while the normal -vvv text output is kept
# for secret scanning. Enabled by tests/lab/playbook.py; never shipped.
from __future__ import annotations

import json
import os
from typing import Any

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: record
type: aggregate
short_description: write task results as JSON lines (test-only)
description: Writes one JSON object per task result to the file named by C(RECORD_CALLBACK_FILE).
options: {}
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "record"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._path = os.environ.get("RECORD_CALLBACK_FILE")

    def _write(self, status: str, result: Any) -> None:
        if not self._path:
            return
        task = result._task
        row = {
            "status": status,
            "host": result._host.get_name(),
            "task": task.get_name(),
            "action": task.action,
            "result": _plain(result._result),
        }
        with open(self._path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row, default=str) + "\n")

    def v2_runner_on_ok(self, result: Any) -> None:
        self._write("ok", result)

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._write("failed", result)

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._write("skipped", result)

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._write("unreachable", result)


def _plain(value: Any) -> Any:
    """Strip Ansible's tagged/unsafe wrappers so json.dumps sees plain types."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    return str(value)
