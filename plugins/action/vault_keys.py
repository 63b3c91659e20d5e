# Copyright: (c) 2026, homelab.pi_cluster maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for homelab.pi_cluster.vault_keys (documentation in plugins/modules/vault_keys.py).

Runs entirely on the controller with the vault secrets this ansible-playbook run already
loaded (--vault-id / --vault-password-file / --ask-vault-pass): nothing is sent to a host.
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.homelab.pi_cluster.plugins.module_utils._credentials import (
    CHARSETS,
    STATE_KEY,
    TRANSITIONS,
    CredentialError,
    generate,
    now_utc,
    public_state,
    transition,
)
from ansible_collections.homelab.pi_cluster.plugins.plugin_utils._vault_file import VaultFile, VaultFileError

ARGUMENT_SPEC: dict[str, Any] = {
    "path": {"type": "path", "required": True},
    "vault_id": {"type": "str"},
    "get": {"type": "list", "elements": "str", "default": []},
    "set": {"type": "dict", "default": {}, "no_log": True},
    "overwrite": {"type": "bool", "default": True},
    "remove": {"type": "list", "elements": "str", "default": []},
    "credential": {"type": "str"},
    "var": {"type": "str"},
    "transition": {"type": "str", "choices": list(TRANSITIONS), "default": "status"},
    "value": {"type": "str", "no_log": True},
    "length": {"type": "int", "default": 32},
    "charset": {"type": "str", "choices": list(CHARSETS), "default": "alnum"},
}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        del tmp
        _ok, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        returns_values = bool(args["get"]) or (args["credential"] and args["transition"] != "status")
        # Values come back in the result: refuse to run where the output is not hidden.
        if returns_values and not self._task.no_log:
            raise AnsibleActionFail("vault_keys: set no_log: true on a task that reads values (get, transition)")
        if args["credential"] and not args["var"]:
            raise AnsibleActionFail("vault_keys: var is required with credential (the key of its current value)")
        check_mode = bool(self._task.check_mode)
        try:
            vault = VaultFile(args["path"], self._loader._vault.secrets, args["vault_id"])
            with vault.locked():
                data = vault.read()
                changed = self._apply(data, args, result)
                if changed and not check_mode:
                    vault.write(data)
        except (VaultFileError, CredentialError) as exc:
            raise AnsibleActionFail(f"vault_keys: {exc}") from None
        states = data.get(STATE_KEY) or {}
        result.update(
            changed=changed,
            path=vault.path,
            credentials={name: public_state(s) for name, s in states.items() if isinstance(s, dict)},
        )
        return result

    def _apply(self, data: dict[str, Any], args: dict[str, Any], result: dict[str, Any]) -> bool:
        """Change ``data`` in place as asked; fill ``result``; return whether anything changed."""
        changed = False
        clashes = sorted(k for k, v in args["set"].items() if k in data and data[k] != v)
        if clashes and not args["overwrite"]:
            raise CredentialError(f"set: {', '.join(clashes)} already hold(s) another value (overwrite=false)")
        for key, value in args["set"].items():
            if key == STATE_KEY:
                raise CredentialError(f"set: {STATE_KEY} is managed through credential transitions")
            if data.get(key) != value:
                data[key] = value
                changed = True
        for key in args["remove"]:
            if key in data:
                del data[key]
                changed = True
        if args["get"]:
            result["values"] = {key: data.get(key) for key in args["get"]}
            result["missing"] = [key for key in args["get"] if key not in data]
        if args["credential"]:
            changed = self._transition(data, args, result) or changed
        return changed

    def _transition(self, data: dict[str, Any], args: dict[str, Any], result: dict[str, Any]) -> bool:
        name, var, action = args["credential"], args["var"], args["transition"]
        states = data.get(STATE_KEY)
        if states is None:
            states = {}
        if not isinstance(states, dict):
            raise CredentialError(f"{STATE_KEY}: must be a mapping of credential name to state")
        before = states.get(name) or {}
        current = data.get(var)
        new_value = None
        if action == "stage" and "pending" not in before:
            new_value = args["value"] or generate(args["length"], args["charset"])
        state, new_current = transition(before, current, action, now_utc(), new_value)
        result["phase"] = state.get("phase") or ""
        result["resumed"] = action == "stage" and "pending" in before
        if action != "status":
            result["current"] = new_current if new_current is not None else ""
            result["pending"] = state.get("pending", "")
            result["previous"] = state.get("previous", "")
        if state == before and new_current == current:
            return False
        states[name] = state
        data[STATE_KEY] = states
        if new_current is not None:
            data[var] = new_current
        return True
