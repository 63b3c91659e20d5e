"""The k3s role's config.yaml building: allow-list validation, layer merging, drop-ins (filters)."""

from __future__ import annotations

from typing import Any

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.pi_cluster.plugins.filter.k3s_config import k3s_config
from ansible_collections.homelab.pi_cluster.plugins.filter.k3s_config_dropins import k3s_config_dropins
from ansible_collections.homelab.pi_cluster.plugins.plugin_utils import _k3s_config as cfg


def test_later_layers_win_and_keys_come_out_sorted() -> None:
    merged = k3s_config(
        [{"token-file": "/t", "node-name": "a"}, {"node-name": "b", "disable": ["traefik"]}, None], "server"
    )
    assert merged == {"disable": ["traefik"], "node-name": "b", "token-file": "/t"}
    assert list(merged) == sorted(merged)


@pytest.mark.parametrize("key", ["node-label+", "kubelet-arg+", "tls-san+"])
def test_append_keys_are_checked_by_their_flag(key: str) -> None:
    assert key in k3s_config([{key: ["x=y"]}], "server")


@pytest.mark.parametrize(
    ("layers", "node_type", "fragments"),
    [
        ([{"disabel": ["traefik"]}], "server", ["'disabel'", "did you mean 'disable'"]),
        ([{}, {"cluster-init": True}], "agent", ["'cluster-init'", "server-only", "layer 2"]),
        ([{"write-kubeconfig-mode": "0644"}], "agent", ["server-only"]),
        ([{"token": "s3cr3t"}], "server", ["'token' is not allowed", "k3s_token"]),
        ([{"agent-token": "x"}], "server", ["agent-token-file"]),
        ([{"bogus-flag": 1, "other-bogus": 2}], "server", ["'bogus-flag'", "'other-bogus'"]),
    ],
)
def test_unknown_and_forbidden_keys_fail_naming_the_key(
    layers: list[dict[str, Any]], node_type: str, fragments: list[str]
) -> None:
    with pytest.raises(AnsibleFilterError) as err:
        k3s_config(layers, node_type)
    for fragment in fragments:
        assert fragment in str(err.value)


def test_error_names_the_variable_the_key_came_from() -> None:
    with pytest.raises(AnsibleFilterError, match="k3s_agent_config: 'node-lable'"):
        k3s_config([{}, {}, {"node-lable": ["a=b"]}], "agent", names=["the role", "k3s_config", "k3s_agent_config"])


def test_secret_values_never_appear_in_errors() -> None:
    with pytest.raises(AnsibleFilterError) as err:
        k3s_config([{"token": "do-not-print-me"}], "server")
    assert "do-not-print-me" not in str(err.value)


@pytest.mark.parametrize("bad", ["not a dict", ["list"]])
def test_layers_must_be_dicts(bad: Any) -> None:
    with pytest.raises(AnsibleFilterError, match="dictionary"):
        k3s_config([bad], "server")


def test_node_type_is_checked() -> None:
    with pytest.raises(AnsibleFilterError, match="node_type"):
        k3s_config([{}], "master")


def test_agent_keys_are_a_subset_of_server_keys() -> None:
    assert cfg.AGENT_KEYS <= cfg.SERVER_KEYS
    assert not cfg.SERVER_ONLY_KEYS & cfg.AGENT_KEYS - {"enable-pprof"}


def test_dropins_are_validated_per_file() -> None:
    result = k3s_config_dropins({"10-kubelet": {"kubelet-arg+": ["max-pods=200"]}, "20-empty": None}, "agent")
    assert result == {"10-kubelet": {"kubelet-arg+": ["max-pods=200"]}, "20-empty": {}}
    with pytest.raises(AnsibleFilterError, match=r"k3s_config_dropins\['30-bad'\]: 'tls-sans'"):
        k3s_config_dropins({"30-bad": {"tls-sans": ["x"]}}, "server")


@pytest.mark.parametrize("name", ["../escape", "10-x.yaml", "", "a b", ".hidden"])
def test_dropin_names_must_be_plain_file_names(name: str) -> None:
    with pytest.raises(AnsibleFilterError, match="file name"):
        k3s_config_dropins({name: {}}, "server")
