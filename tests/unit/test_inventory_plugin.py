"""The inventory plugin in-process: groups, variables, constructed features, live data, cache, unsafe data.

The API is replaced by a counting fake of ``fetch_nodes`` here; the same paths run against the
test API server in tests/integration/test_inventory_live.py.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ansible.plugins.inventory as inventory_plugins
import pytest
from ansible.errors import AnsibleError, AnsibleParserError
from ansible.inventory.data import InventoryData
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import inventory_loader
from ansible.template import Templar, trust_as_template

REPO = Path(__file__).resolve().parents[2]
EVIL = "{{ lookup('pipe', 'id') }}"

BASE = """
plugin: homelab.pi_cluster.cluster
cluster_name: pi-cluster
domain: home.example.com
network: 192.168.1.0/24
node_groups:
  server:
    names: pi-master
    ip_start: 192.168.1.240
    roles: [k3s_server]
  workers:
    names: pi-worker-[01:03]
    ip_start: 192.168.1.241
    roles: [k3s_agent]
    vars:
      rack: b
    hosts:
      pi-worker-03:
        rack: c
        greeting: "{{ 'hello' | upper }}"
  dns:
    names: pihole-[1:2]
    ips: [192.168.1.25, 192.168.1.26]
    roles: [pihole]
"""


def node(name: str, ready: bool = True, labels: dict[str, str] | None = None, ip: str = "") -> dict[str, Any]:
    """A Node summary as _cluster_live.fetch_nodes returns it."""
    return {
        "name": name,
        "ready": ready,
        "kubelet_version": "v1.31.4+k3s1",
        "arch": "arm64",
        "labels": {"kubernetes.io/arch": "arm64", **(labels or {})},
        "internal_ip": ip or None,
    }


class FakeAPI:
    """Stands in for fetch_nodes: counts calls, returns nodes or raises LiveError."""

    def __init__(self, module: Any) -> None:
        self.module = module
        self.calls = 0
        self.nodes: list[dict[str, Any]] = []
        self.down = False
        self.auth: dict[str, Any] = {}

    def __call__(self, auth: dict[str, Any], timeout: float = 10, retries: int = 2) -> list[dict[str, Any]]:
        self.calls += 1
        self.auth = auth
        if self.down:
            raise self.module.LiveError("GET https://127.0.0.1:1/api/v1/nodes failed: connection refused")
        return [dict(n) for n in self.nodes]


@pytest.fixture(scope="module")
def plugin_module() -> Any:
    # the root conftest installed Ansible's collection finder, so the loader resolves FQCNs
    plugin = inventory_loader.get("homelab.pi_cluster.cluster")
    return sys.modules[type(plugin).__module__]


@pytest.fixture
def api(plugin_module: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAPI]:
    fake = FakeAPI(sys.modules["ansible_collections.homelab.pi_cluster.plugins.plugin_utils._cluster_live"])
    monkeypatch.setattr(plugin_module, "fetch_nodes", fake)
    yield fake


@pytest.fixture
def warnings(plugin_module: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Warnings the plugin shows (through the Display every inventory plugin shares)."""
    seen: list[str] = []
    monkeypatch.setattr(inventory_plugins.display, "warning", lambda msg, *a, **kw: seen.append(msg))
    return seen


Parse = Callable[..., InventoryData]


@pytest.fixture
def parse(tmp_path: Path, plugin_module: Any) -> Parse:
    def run(extra: str = "", *, base: str = BASE, cache: bool = True, name: str = "c.pi_cluster.yml") -> InventoryData:
        path = tmp_path / name
        path.write_text(textwrap.dedent(base) + textwrap.dedent(extra), encoding="utf-8")
        inventory = InventoryData()
        plugin = inventory_loader.get("homelab.pi_cluster.cluster")
        assert plugin.verify_file(str(path))
        plugin.parse(inventory, DataLoader(), str(path), cache=cache)
        if getattr(plugin, "_cache", None) is not None:
            plugin.update_cache_if_changed()  # what the InventoryManager does after parse()
        return inventory

    return run


def members(inventory: InventoryData, group: str) -> list[str]:
    return sorted(h.name for h in inventory.groups[group].get_hosts())


def hostvar(inventory: InventoryData, host: str, name: str) -> Any:
    return inventory.get_host(host).get_vars().get(name)


# --- files and static output ---------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "accepted"),
    [("lab.pi_cluster.yml", True), ("x.pi_cluster.yaml", True), ("pi_cluster.yml", False), ("lab.yml", False)],
)
def test_verify_file_checks_the_suffix(tmp_path: Path, plugin_module: Any, name: str, accepted: bool) -> None:
    path = tmp_path / name
    path.write_text("plugin: homelab.pi_cluster.cluster\n", encoding="utf-8")
    assert inventory_loader.get("homelab.pi_cluster.cluster").verify_file(str(path)) is accepted


def test_groups_and_connection_vars(parse: Parse) -> None:
    inventory = parse()
    assert members(inventory, "k3s_server") == ["pi-master"]
    assert members(inventory, "k3s_agent") == ["pi-worker-01", "pi-worker-02", "pi-worker-03"]
    assert members(inventory, "k3s_cluster") == ["pi-master", "pi-worker-01", "pi-worker-02", "pi-worker-03"]
    assert sorted(g.name for g in inventory.groups["k3s_cluster"].child_groups) == ["k3s_agent", "k3s_server"]
    assert members(inventory, "pihole") == ["pihole-1", "pihole-2"]
    assert members(inventory, "nas") == []
    assert members(inventory, "etcd") == []
    assert hostvar(inventory, "pi-worker-02", "ansible_host") == "192.168.1.242"
    assert hostvar(inventory, "pi-worker-02", "ansible_user") == "pi"  # the ssh_user default
    assert hostvar(inventory, "pi-worker-02", "pi_cluster_fqdn") == "pi-worker-02.home.example.com"
    assert hostvar(inventory, "pihole-2", "pi_cluster_node_group") == "dns"
    assert hostvar(inventory, "pi-worker-01", "rack") == "b"
    assert hostvar(inventory, "pi-worker-03", "rack") == "c"
    all_vars = inventory.groups["all"].get_vars()
    assert (all_vars["pi_cluster_name"], all_vars["pi_cluster_domain"]) == ("pi-cluster", "home.example.com")
    assert all_vars["pi_cluster_embedded_etcd"] is False


def test_vars_from_the_file_stay_templatable(parse: Parse) -> None:
    """The cluster file is trusted like any inventory file: its templates render."""
    inventory = parse()
    templar = Templar(loader=DataLoader(), variables=inventory.get_host("pi-worker-03").get_vars())
    assert templar.template(trust_as_template("{{ greeting }}")) == "HELLO"


def test_cluster_vars_and_no_address_uses_fqdn(parse: Parse) -> None:
    inventory = parse(
        """
        vars:
          timezone: Europe/Berlin
        """,
        base=BASE.replace("    ips: [192.168.1.25, 192.168.1.26]\n", ""),
    )
    assert inventory.groups["all"].get_vars()["timezone"] == "Europe/Berlin"
    assert hostvar(inventory, "pihole-1", "ansible_host") == "pihole-1.home.example.com"


def test_top_level_options_may_be_templates(parse: Parse, tmp_path: Path) -> None:
    (tmp_path / "net").write_text("10.251.78\n", encoding="utf-8")
    base = BASE.replace(
        "network: 192.168.1.0/24",
        "network: \"{{ lookup('ansible.builtin.file', inventory_dir ~ '/net') | trim }}.0/24\"",
    ).replace("ip_start: 192.168.1.240", "ip_start: 11")
    base = base.replace("ip_start: 192.168.1.241", "ip_start: 12").replace("[192.168.1.25, 192.168.1.26]", "[2, 3]")
    inventory = parse(base=base)
    assert hostvar(inventory, "pi-master", "ansible_host") == "10.251.78.11"
    assert hostvar(inventory, "pi-worker-03", "ansible_host") == "10.251.78.14"
    assert hostvar(inventory, "pihole-2", "ansible_host") == "10.251.78.3"


def test_template_errors_name_the_option(parse: Parse) -> None:
    with pytest.raises(AnsibleParserError, match=r"c.pi_cluster.yml: network: could not render the template"):
        parse(base=BASE.replace("network: 192.168.1.0/24", 'network: "{{ no_such_variable }}"'))


def test_errors_name_file_and_key(parse: Parse, tmp_path: Path) -> None:
    with pytest.raises(AnsibleParserError) as info:
        parse(base=BASE.replace("pihole-[1:2]", "pi-worker-[03:04]"), name="bad.pi_cluster.yml")
    message = str(info.value)
    assert str(tmp_path / "bad.pi_cluster.yml") in message
    assert "node_groups.dns.names: host 'pi-worker-03' is already defined by node_groups.workers.names" in message


def test_even_etcd_servers_warn(parse: Parse, warnings: list[str]) -> None:
    two_servers = BASE.replace("names: pi-master", "names: pi-master-[1:2]").replace("192.168.1.240", "192.168.1.230")
    inventory = parse(base=two_servers)
    assert members(inventory, "etcd") == ["pi-master-1", "pi-master-2"]
    assert any("2 servers run embedded etcd" in w for w in warnings)


# --- constructed ------------------------------------------------------------------------


def test_compose_groups_and_keyed_groups(parse: Parse) -> None:
    inventory = parse(
        """
        compose:
          node_ip: ansible_host
          short_rack: rack | default('none') | upper
        groups:
          rack_b: rack | default('') == 'b'
          composed_seen: short_rack == 'C'
        keyed_groups:
          - key: pi_cluster_node_group
            prefix: nodes
          - key: rack | default(omit)
            prefix: rack
            separator: "-"
        """
    )
    assert hostvar(inventory, "pi-worker-01", "node_ip") == "192.168.1.241"
    assert hostvar(inventory, "pihole-1", "short_rack") == "NONE"
    assert members(inventory, "rack_b") == ["pi-worker-01", "pi-worker-02"]
    assert members(inventory, "composed_seen") == ["pi-worker-03"]  # groups see composed variables
    assert members(inventory, "nodes_workers") == ["pi-worker-01", "pi-worker-02", "pi-worker-03"]
    assert members(inventory, "nodes_dns") == ["pihole-1", "pihole-2"]
    assert members(inventory, "rack_c") == ["pi-worker-03"]  # '-' is sanitized to '_'


def test_compose_sees_cluster_wide_vars(parse: Parse) -> None:
    inventory = parse("compose:\n  fqdn_again: inventory_hostname ~ '.' ~ pi_cluster_domain\n")
    assert hostvar(inventory, "pi-master", "fqdn_again") == "pi-master.home.example.com"


def test_strict_turns_bad_expressions_into_errors(parse: Parse) -> None:
    lenient = parse("compose:\n  broken: no_such_var.attr\n")
    assert hostvar(lenient, "pi-master", "broken") is None
    with pytest.raises(AnsibleError, match="broken"):
        parse("strict: true\ncompose:\n  broken: no_such_var.attr\n")


# --- live data ----------------------------------------------------------------------------

LIVE = """
live: true
kubeconfig: /nonexistent/kubeconfig
label_groups: [topology.kubernetes.io/zone, node-role.kubernetes.io/master]
"""


def test_live_vars_and_groups(parse: Parse, api: FakeAPI, warnings: list[str]) -> None:
    api.nodes = [
        node("pi-master", labels={"node-role.kubernetes.io/master": "true", "topology.kubernetes.io/zone": "r1"}),
        node("pi-worker-01", labels={"topology.kubernetes.io/zone": "r1"}),
        node("pi-worker-02", ready=False, labels={"topology.kubernetes.io/zone": "r2"}),
    ]
    inventory = parse(LIVE)
    assert api.calls == 1
    assert api.auth["kubeconfig"] == "/nonexistent/kubeconfig"
    assert members(inventory, "k3s_ready") == ["pi-master", "pi-worker-01"]
    # pi-worker-03 has no Node (not joined yet): not ready, and marked as not registered
    assert members(inventory, "k3s_not_ready") == ["pi-worker-02", "pi-worker-03"]
    assert hostvar(inventory, "pi-worker-03", "k3s_live_registered") is False
    assert hostvar(inventory, "pi-worker-02", "k3s_live_ready") is False
    assert hostvar(inventory, "pi-master", "k3s_live_version") == "v1.31.4+k3s1"
    assert hostvar(inventory, "pi-master", "k3s_live_arch") == "arm64"
    assert hostvar(inventory, "pi-worker-01", "k3s_live_labels")["topology.kubernetes.io/zone"] == "r1"
    assert members(inventory, "k3s_label_topology_kubernetes_io_zone_r1") == ["pi-master", "pi-worker-01"]
    assert members(inventory, "k3s_label_node_role_kubernetes_io_master_true") == ["pi-master"]
    assert hostvar(inventory, "pihole-1", "k3s_live_ready") is None  # not a K3s host
    assert warnings == []


def test_keyed_groups_on_live_labels(parse: Parse, api: FakeAPI) -> None:
    api.nodes = [node("pi-master", labels={"tier": "gold"})]
    inventory = parse(LIVE + "keyed_groups:\n  - key: k3s_live_labels | default({})\n    prefix: label\n")
    assert members(inventory, "label_tier_gold") == ["pi-master"]
    assert members(inventory, "label_kubernetes_io_arch_arm64") == ["pi-master"]


def test_unmanaged_nodes_warn_and_optionally_join_a_group(parse: Parse, api: FakeAPI, warnings: list[str]) -> None:
    api.nodes = [node("pi-master"), node("mystery-pi", ip="192.168.1.99")]
    inventory = parse(LIVE)
    assert "mystery-pi" not in inventory.hosts
    assert any("not described in this file (unmanaged): mystery-pi" in w for w in warnings)

    inventory = parse(LIVE + "unmanaged_group: true\n")
    assert members(inventory, "k3s_unmanaged") == ["mystery-pi"]
    assert hostvar(inventory, "mystery-pi", "ansible_host") == "192.168.1.99"
    assert "mystery-pi" in members(inventory, "k3s_ready")
    assert "mystery-pi" not in members(inventory, "k3s_cluster")


def test_unmanaged_node_named_like_a_group_is_skipped(parse: Parse, api: FakeAPI, warnings: list[str]) -> None:
    api.nodes = [node("pi-master"), node("etcd")]
    inventory = parse(LIVE + "unmanaged_group: true\n")
    assert "etcd" not in inventory.hosts
    assert members(inventory, "k3s_unmanaged") == []
    assert any("unmanaged node 'etcd' not added" in w for w in warnings)


def test_unreachable_api_degrades_to_static(parse: Parse, api: FakeAPI, warnings: list[str]) -> None:
    api.down = True
    inventory = parse(LIVE)
    assert api.calls == 1
    assert members(inventory, "k3s_agent") == ["pi-worker-01", "pi-worker-02", "pi-worker-03"]
    assert members(inventory, "k3s_ready") == members(inventory, "k3s_not_ready") == []
    assert hostvar(inventory, "pi-master", "k3s_live_ready") is None
    assert any("live data not available, using the static inventory only" in w for w in warnings)


def test_api_strings_are_never_templated(parse: Parse, api: FakeAPI) -> None:
    api.nodes = [node("pi-master", labels={"evil": EVIL})]
    inventory = parse(LIVE + "compose:\n  evil_copy: k3s_live_labels['evil']\n")
    variables = inventory.get_host("pi-master").get_vars()
    templar = Templar(loader=DataLoader(), variables=variables)
    assert templar.template(trust_as_template("{{ k3s_live_labels['evil'] }}")) == EVIL
    assert templar.template(trust_as_template("{{ evil_copy }}")) == EVIL
    assert templar.template(variables["k3s_live_labels"]["evil"]) == EVIL


# --- cache ----------------------------------------------------------------------------------


@pytest.fixture
def cached(tmp_path: Path) -> str:
    return LIVE + textwrap.dedent(
        f"""
        cache: true
        cache_plugin: ansible.builtin.jsonfile
        cache_connection: {tmp_path / "cache"}
        cache_timeout: 600
        """
    )


def test_cache_miss_fetches_and_writes_then_hits(parse: Parse, api: FakeAPI, cached: str, tmp_path: Path) -> None:
    api.nodes = [node("pi-master"), node("pi-worker-01", ready=False)]
    first = parse(cached)
    assert api.calls == 1
    assert len(list((tmp_path / "cache").iterdir())) == 1

    api.nodes = []  # the API changed, but a cache hit must not ask it
    second = parse(cached)
    assert api.calls == 1
    assert members(second, "k3s_ready") == members(first, "k3s_ready") == ["pi-master"]
    assert "pi-worker-01" in members(second, "k3s_not_ready")


def test_refresh_fetches_and_rewrites(parse: Parse, api: FakeAPI, cached: str) -> None:
    api.nodes = [node("pi-master", ready=False)]
    parse(cached)
    api.nodes = [node("pi-master", ready=True)]
    refreshed = parse(cached, cache=False)  # --flush-cache / meta: refresh_inventory
    assert api.calls == 2
    assert members(refreshed, "k3s_ready") == ["pi-master"]
    again = parse(cached)
    assert api.calls == 2
    assert members(again, "k3s_ready") == ["pi-master"]  # the refreshed data was written


def test_failed_fetch_is_not_cached(parse: Parse, api: FakeAPI, cached: str, tmp_path: Path) -> None:
    api.down = True
    parse(cached)
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())
    api.down = False
    api.nodes = [node("pi-master")]
    inventory = parse(cached)
    assert api.calls == 2
    assert members(inventory, "k3s_ready") == ["pi-master"]


def test_cache_key_depends_on_the_api_endpoint(parse: Parse, api: FakeAPI, cached: str) -> None:
    api.nodes = [node("pi-master")]
    parse(cached)
    parse(cached + "context: other-cluster\n")
    assert api.calls == 2
    parse(cached + "context: other-cluster\n")
    assert api.calls == 2


def test_cache_key_follows_the_kubeconfig_from_the_environment(
    parse: Parse, api: FakeAPI, cached: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.nodes = [node("pi-master")]
    without_option = cached.replace("kubeconfig: /nonexistent/kubeconfig\n", "")
    monkeypatch.setenv("K8S_AUTH_KUBECONFIG", "/clusters/one")
    parse(without_option)
    monkeypatch.setenv("K8S_AUTH_KUBECONFIG", "/clusters/two")
    parse(without_option)
    assert api.calls == 2
    parse(without_option)
    assert api.calls == 2


def test_cache_off_always_fetches(parse: Parse, api: FakeAPI) -> None:
    api.nodes = [node("pi-master")]
    parse(LIVE)
    parse(LIVE)
    assert api.calls == 2


def test_cached_api_strings_are_never_templated(parse: Parse, api: FakeAPI, cached: str) -> None:
    api.nodes = [node("pi-master", labels={"evil": EVIL})]
    parse(cached)
    inventory = parse(cached)  # from the jsonfile cache
    assert api.calls == 1
    templar = Templar(loader=DataLoader(), variables=inventory.get_host("pi-master").get_vars())
    assert templar.template(trust_as_template("{{ k3s_live_labels['evil'] }}")) == EVIL
