"""Unit tests: pihole_dns input validation, normalisation and change planning."""

from __future__ import annotations

from typing import Any

import pytest

from ansible_collections.homelab.pi_cluster.plugins.module_utils._pihole_records import (
    PiholeInputError,
    canonical_ip,
    normalize_name,
    parse_cname_entry,
    parse_host_entry,
    parse_records,
    plan_changes,
)


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("10.0.0.5", "10.0.0.5"),
        (" 10.0.0.5 ", "10.0.0.5"),
        ("2001:DB8:0:0::1", "2001:db8::1"),
        ("fd00:0:0:0:0:0:0:240", "fd00::240"),
        ("10.0.0.300", None),
        ("grafana", None),
        ("", None),
    ],
)
def test_canonical_ip(raw: str, want: str | None) -> None:
    assert canonical_ip(raw) == want


@pytest.mark.parametrize(("raw", "want"), [("Grafana.LAB.", "grafana.lab"), ("  www.lab ", "www.lab"), (None, "")])
def test_normalize_name(raw: Any, want: str) -> None:
    assert normalize_name(raw) == want


@pytest.mark.parametrize(
    ("entry", "want"),
    [
        ("10.0.0.5 grafana.lab", ("10.0.0.5", ["grafana.lab"])),
        ("10.0.0.5\tGrafana.Lab  prom.lab # note", ("10.0.0.5", ["grafana.lab", "prom.lab"])),
        ("2001:DB8::1 v6.lab", ("2001:db8::1", ["v6.lab"])),
        ("# a comment", None),
        ("", None),
        ("not-an-ip name", None),
        ("10.0.0.5", None),
    ],
)
def test_parse_host_entry(entry: str, want: Any) -> None:
    assert parse_host_entry(entry) == want


@pytest.mark.parametrize(
    ("entry", "want"),
    [
        ("www.lab,grafana.lab", (["www.lab"], "grafana.lab", None)),
        ("a.lab,b.lab,target.lab,300", (["a.lab", "b.lab"], "target.lab", 300)),
        ("*.example.com,default.example.com", (["*.example.com"], "default.example.com", None)),
        ("only-one", None),
        ("a,,b", None),
    ],
)
def test_parse_cname_entry(entry: str, want: Any) -> None:
    assert parse_cname_entry(entry) == want


BAD_INPUTS = [
    ([{"name": "", "ip": "10.0.0.1"}], {}, "records[0].name"),
    ([{"name": "bad name!", "ip": "10.0.0.1"}], {}, "records[0].name"),
    ([{"name": "a.lab", "ip": "10.0.0.300"}], {}, "records[0].ip"),
    ([{"name": "a.lab", "ip": "10.0.0.1", "target": "b.lab"}], {}, "records[0].ip"),
    ([{"name": "a.lab"}], {}, "records[0].ip"),
    ([{"name": "a.lab", "target": "a.lab"}], {}, "records[0].target"),
    ([{"name": "a.lab", "target": "b.lab"}, {"name": "b.lab", "target": "a.lab"}], {}, "records"),
    ([{"name": "a.lab", "target": "b.lab", "ttl": -5}], {}, "records[0].ttl"),
    ([{"name": "a.lab", "ip": "10.0.0.1", "ttl": 60}], {}, "records[0].ttl"),
    ([{"name": "a.lab", "target": "b..lab"}], {}, "records[0].target"),
    ([{"name": "a.other", "ip": "10.0.0.1"}], {"exclusive": True, "domain": "lab"}, "records[0].name"),
    ([{"name": "a.lab", "ip": "10.0.0.1"}], {"exclusive": True}, "domain"),
    ([{"name": "a.lab", "ip": "10.0.0.1"}], {"exclusive": True, "domain": "lab", "state": "absent"}, "exclusive"),
    ([{"name": "a.lab", "ip": "10.0.0.1"}], {"domain": "-bad-"}, "domain"),
    ([{"name": "a.lab", "ip": "10.0.0.1"}, {"name": "a.lab", "target": "b.lab"}], {}, "records[1].name"),
    ([{"name": "a.lab", "target": "b.lab"}, {"name": "a.lab", "target": "c.lab"}], {}, "records[1].name"),
    ([], {"state": "absent"}, "records"),
    (["a.lab"], {}, "records[0]"),
]


@pytest.mark.parametrize(("records", "options", "field"), BAD_INPUTS)
def test_bad_input_names_the_field(records: list[Any], options: dict[str, Any], field: str) -> None:
    with pytest.raises(PiholeInputError) as caught:
        parse_records(records, options.pop("state", "present"), **options)
    assert caught.value.field == field
    assert str(caught.value).startswith(field + ":")


def test_shorthand_errors_name_the_top_level_option() -> None:
    with pytest.raises(PiholeInputError) as caught:
        parse_records([{"name": "a.lab", "ip": "300.1.1.1"}], "present", from_shorthand=True)
    assert caught.value.field == "ip"


def desired(records: list[dict[str, Any]], state: str = "present", **options: Any) -> Any:
    return parse_records(records, state, **options)


def test_add_is_written_as_ftl_stores_it() -> None:
    plan = plan_changes(
        [],
        [],
        desired([{"name": "Grafana.Lab.", "ip": "10.0.0.5"}, {"name": "www.lab", "target": "grafana.lab", "ttl": 300}]),
    )
    assert plan.hosts.after == ["10.0.0.5 grafana.lab"]
    assert plan.cnames.after == ["www.lab,grafana.lab,300"]
    assert plan.added == ["A grafana.lab 10.0.0.5", "CNAME www.lab -> grafana.lab ttl=300"]


def test_equal_after_normalisation_is_no_change() -> None:
    current = ["10.0.0.5 GRAFANA.lab", "2001:DB8:0::1 grafana.lab"]
    plan = plan_changes(
        current,
        ["WWW.lab,Grafana.lab"],
        desired(
            [
                {"name": "grafana.lab", "ip": "10.0.0.5"},
                {"name": "grafana.lab", "ip": "2001:db8::1"},
                {"name": "www.lab", "target": "grafana.lab"},
            ]
        ),
    )
    assert not plan.changed


def test_ip_change_replaces_only_the_same_family() -> None:
    current = ["10.0.0.4 grafana.lab", "fd00::4 grafana.lab", "10.0.0.9 other.lab"]
    plan = plan_changes(current, [], desired([{"name": "grafana.lab", "ip": "10.0.0.5"}]))
    assert plan.hosts.after == ["fd00::4 grafana.lab", "10.0.0.9 other.lab", "10.0.0.5 grafana.lab"]
    assert plan.hosts.remove_entries == ["10.0.0.4 grafana.lab"]
    assert plan.removed == ["A grafana.lab 10.0.0.4"]


def test_shared_entry_is_split_and_other_names_kept() -> None:
    plan = plan_changes(["10.0.0.4 grafana.lab prom.lab"], [], desired([{"name": "grafana.lab", "ip": "10.0.0.5"}]))
    assert plan.hosts.after == ["10.0.0.4 prom.lab", "10.0.0.5 grafana.lab"]
    assert plan.hosts.remove_entries == ["10.0.0.4 grafana.lab prom.lab"]
    assert plan.hosts.add_entries == ["10.0.0.4 prom.lab", "10.0.0.5 grafana.lab"]


def test_cname_target_and_ttl_change() -> None:
    plan = plan_changes([], ["www.lab,old.lab"], desired([{"name": "www.lab", "target": "new.lab", "ttl": 60}]))
    assert plan.cnames.after == ["www.lab,new.lab,60"]
    assert plan.removed == ["CNAME www.lab -> old.lab"]


def test_name_switching_between_a_and_cname() -> None:
    plan = plan_changes(["10.0.0.5 www.lab"], [], desired([{"name": "www.lab", "target": "grafana.lab"}]))
    assert plan.hosts.after == []
    assert plan.cnames.after == ["www.lab,grafana.lab"]
    plan = plan_changes([], ["www.lab,grafana.lab"], desired([{"name": "www.lab", "ip": "10.0.0.5"}]))
    assert plan.cnames.after == []
    assert plan.hosts.after == ["10.0.0.5 www.lab"]


def test_absent_by_name_removes_every_kind() -> None:
    plan = plan_changes(
        ["10.0.0.5 www.lab", "fd00::5 www.lab", "10.0.0.6 keep.lab"],
        ["www.lab,grafana.lab", "keep2.lab,grafana.lab"],
        desired([{"name": "WWW.lab"}], "absent"),
    )
    assert plan.hosts.after == ["10.0.0.6 keep.lab"]
    assert plan.cnames.after == ["keep2.lab,grafana.lab"]


def test_absent_with_ip_removes_only_that_address() -> None:
    plan = plan_changes(
        ["10.0.0.5 www.lab", "10.0.0.6 www.lab"], [], desired([{"name": "www.lab", "ip": "10.0.0.5"}], "absent")
    )
    assert plan.hosts.after == ["10.0.0.6 www.lab"]
    assert not plan.added


def test_exclusive_purges_inside_the_domain_only() -> None:
    current = [
        "10.0.0.5 grafana.lab.example",
        "10.0.0.6 stale.lab.example",
        "10.0.0.7 lab.example",
        "10.0.0.8 printer.home",
        "10.0.0.9 notlab.example",
        "# comment kept",
    ]
    cnames = ["old.lab.example,grafana.lab.example", "nas.home,printer.home"]
    plan = plan_changes(
        current,
        cnames,
        desired([{"name": "grafana.lab.example", "ip": "10.0.0.5"}], exclusive=True, domain="lab.example"),
    )
    assert plan.hosts.after == [
        "10.0.0.5 grafana.lab.example",
        "10.0.0.8 printer.home",
        "10.0.0.9 notlab.example",
        "# comment kept",
    ]
    assert plan.cnames.after == ["nas.home,printer.home"]
    assert sorted(plan.removed) == [
        "A lab.example 10.0.0.7",
        "A stale.lab.example 10.0.0.6",
        "CNAME old.lab.example -> grafana.lab.example",
    ]


def test_unparseable_entries_are_kept_in_place() -> None:
    plan = plan_changes(["garbage", "10.0.0.1 a.lab"], ["x"], desired([{"name": "b.lab", "ip": "10.0.0.2"}]))
    assert plan.hosts.after == ["garbage", "10.0.0.1 a.lab", "10.0.0.2 b.lab"]
    assert plan.cnames.after == ["x"]
