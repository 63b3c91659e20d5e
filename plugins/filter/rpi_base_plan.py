# Copyright: (c) 2026, homelab.pi_cluster maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: rpi_base_plan
short_description: What the rpi_base role has to change on a host, from its preflight probe
version_added: 0.1.0
description:
  - Internal to the C(homelab.pi_cluster.rpi_base) role (its C(vars/main.yml) calls it); the keys may change
    without notice.
  - Takes the lines the role's preflight probe printed (C(<what> <value>)) and the role's settings, and returns
    what the role decides on - the device-tree model and boot directory, the wanted C(cmdline.txt) line and
    C(config.txt) block and whether they are in place, the swap, kernel, package and system steps still to
    do, and whether anything is to do at all.
  - One Python call per host instead of a chain of role variables, each of which Ansible would compile and
    render again for every task and host that refers to it.
author:
  - homelab.pi_cluster maintainers (@homelab)
options:
  _input:
    description: The probe's output lines.
    type: list
    elements: str
    required: true
  settings:
    description:
      - The role's settings, keys as the role variables without the C(rpi_base_) prefix (C(manage_boot),
        C(cmdline_args), C(config_txt), C(pcie_gen3), C(swapfile), C(apply_kernel_globals), C(sysctl),
        C(sysctl_file), C(sysctl_content), C(kernel_modules), C(modules_load_file), C(modules_load_content),
        C(hostname), C(timezone), C(packages)), plus C(os_family) from the facts when gathered.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Show whether the host needs any change
  ansible.builtin.debug:
    msg: "{{ (__rpi_base_probe.stdout_lines | homelab.pi_cluster.rpi_base_plan(settings)).to_do }}"
  vars:
    settings: {manage_boot: true, cmdline_args: [cgroup_memory=1, cgroup_enable=memory]}
"""

RETURN = r"""
_value:
  description: The plan (see the role's C(vars/main.yml) for each key's meaning).
  type: dict
"""

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

CONFIG_TXT_LINE = re.compile(r"^config_txt_(marker|block |no_final_newline)")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _file_line(content: str, path: str) -> str:
    """The probe's line for a managed file in place: content checksum, mode 644, owned by root."""
    return f"file {_sha256(content)} 644 root root {path}"


class _Probe:
    """The probe's lines, looked up by their first word."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.present = set(lines)
        self.values: dict[str, list[str]] = {}
        for line in lines:
            key, _sep, value = line.partition(" ")
            self.values.setdefault(key, []).append(value)

    def first(self, key: str, default: str = "") -> str:
        return (self.values.get(key) or [default])[0]

    def all(self, key: str) -> list[str]:
        return list(self.values.get(key, []))


def _boot(probe: _Probe, s: Mapping[str, Any], plan: dict[str, Any]) -> None:
    model = probe.first("model").strip()
    plan["model"] = model
    plan["is_pi"] = model.startswith("Raspberry Pi")
    plan["is_pi5"] = model.startswith("Raspberry Pi 5")
    plan["boot_managed"] = plan["is_pi"] and bool(s["manage_boot"])
    plan["boot_dir"] = probe.first("boot_dir")
    # cmdline.txt: every existing argument in its order (all lines joined into the one line the firmware
    # reads), then the wanted arguments that are missing
    now = probe.first("cmdline").split()
    plan["cmdline_wanted"] = " ".join(now + [arg for arg in s["cmdline_args"] if arg not in now])
    plan["cmdline_in_place"] = f"cmdline_sha256 {_sha256(plan['cmdline_wanted'] + chr(10))}" in probe.present
    config_txt = dict(s["config_txt"])
    if s["pcie_gen3"] and plan["is_pi5"]:
        config_txt["dtparam=pciex1_gen"] = "3"
    plan["config_txt"] = config_txt
    plan["config_txt_lines"] = ["[all]"] + [f"{key}={value}" for key, value in config_txt.items()]
    # one managed block holding exactly the wanted lines (none when there are none), the file ending in a newline
    block = [f"config_txt_block {line}" for line in plan["config_txt_lines"]]
    wanted = ["config_txt_marker", *block, "config_txt_marker"] if config_txt else []
    plan["config_txt_in_place"] = [line for line in probe.lines if CONFIG_TXT_LINE.match(line)] == wanted
    plan["boot_in_place"] = plan["boot_managed"] and plan["cmdline_in_place"] and plan["config_txt_in_place"]


def _kernel(probe: _Probe, s: Mapping[str, Any], plan: dict[str, Any]) -> None:
    # sysctl rows "<key> <w|r|-> <same|differs>": applied now are all keys, or only the writable net.* ones
    # where the kernel is shared
    rows = [value.split() for value in probe.all("sysctl")]
    writable = {row[0] for row in rows if len(row) == 3 and row[1] == "w"}
    differs = {row[0] for row in rows if len(row) == 3 and row[2] == "differs"}
    keys = list(s["sysctl"])
    apply_globals = bool(s["apply_kernel_globals"])
    live = keys if apply_globals else [key for key in keys if key.startswith("net.") and key in writable]
    plan["sysctl_live"] = live
    plan["sysctl_to_set"] = [f"{key}={s['sysctl'][key]}" for key in keys if key in live and key in differs]
    plan["kmods_loaded"] = probe.all("kmod")
    plan["modules_load_in_place"] = _file_line(s["modules_load_content"], s["modules_load_file"]) in probe.present
    plan["sysctl_file_in_place"] = _file_line(s["sysctl_content"], s["sysctl_file"]) in probe.present
    plan["kernel_to_do"] = (
        not (plan["modules_load_in_place"] and plan["sysctl_file_in_place"])
        or (apply_globals and any(module not in plan["kmods_loaded"] for module in s["kernel_modules"]))
        or bool(plan["sysctl_to_set"])
    )


def _swap(probe: _Probe, s: Mapping[str, Any], plan: dict[str, Any]) -> None:
    plan["swap_areas"] = probe.all("swap")
    plan["swapfile_exists"] = "swapfile" in probe.values
    plan["fstab_swap"] = "fstab_swap" in probe.present
    plan["swap_to_do"] = (
        "dphys-swapfile" in plan["installed"]
        or plan["fstab_swap"]
        or (bool(plan["swap_areas"]) and bool(s["apply_kernel_globals"]))
        or (plan["swapfile_exists"] and s["swapfile"] not in plan["swap_areas"])
    )


def _system(probe: _Probe, s: Mapping[str, Any], plan: dict[str, Any]) -> None:
    hostname, timezone = s["hostname"], s["timezone"]
    seen = probe.present
    plan["hostname_in_place"] = f"hostname {hostname}" in seen and f"hostname_static {hostname}" in seen
    plan["hosts_line"] = f"127.0.1.1\t{hostname}"
    plan["system_to_do"] = bool(
        (hostname and not (plan["hostname_in_place"] and f"hosts_line {plan['hosts_line']}" in probe.present))
        or (timezone and f"timezone {timezone}" not in probe.present)
    )


def rpi_base_plan(lines: Any, settings: Any) -> dict[str, Any]:
    if not isinstance(lines, list) or not isinstance(settings, Mapping):
        raise AnsibleFilterError("rpi_base_plan: expects the probe's lines (a list) and the settings (a dict)")
    probe = _Probe([str(line) for line in lines])
    os_ids = probe.first("os", "unknown").split() or ["unknown"]
    os_name = settings.get("os_family") or os_ids[0]
    plan: dict[str, Any] = {
        "os_ids": os_ids,
        "os_name": os_name,
        "os_debian": os_name == "Debian" or "debian" in os_ids,
        "installed": probe.all("package"),
        "cgroup": probe.first("cgroup"),
    }
    try:
        _boot(probe, settings, plan)
        _kernel(probe, settings, plan)
        _swap(probe, settings, plan)
        _system(probe, settings, plan)
    except KeyError as exc:
        raise AnsibleFilterError(f"rpi_base_plan: settings lack {exc.args[0]!r}") from exc
    plan["missing_packages"] = [p for p in dict.fromkeys(settings["packages"]) if p not in plan["installed"]]
    plan["to_do"] = bool(
        (plan["boot_managed"] and not plan["boot_in_place"])
        or (settings.get("disable_swap", True) and plan["swap_to_do"])
        or plan["kernel_to_do"]
        or plan["missing_packages"]
        or plan["system_to_do"]
    )
    return plan


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"rpi_base_plan": rpi_base_plan}
