"""Credential rotation logic: registry checks, due dates, the state machine, generation, SCRAM."""

from __future__ import annotations

import base64
import hashlib
import hmac
import string
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ansible_collections.homelab.pi_cluster.plugins.module_utils._credentials import (
    CHARSETS,
    CredentialError,
    RegistryError,
    TransitionError,
    due_reason,
    format_time,
    generate,
    plan,
    public_state,
    scram_sha256_verifier,
    transition,
    validate_registry,
)

NOW = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
PIHOLE = {"name": "pihole_admin", "kind": "pihole_admin", "servers": ["http://127.0.0.1:8080"]}
SECRET = {"name": "grafana", "kind": "k8s_secret", "namespace": "monitoring", "secret": "grafana", "key": "pw"}


def test_defaults_are_filled_in() -> None:
    [entry] = validate_registry([PIHOLE])
    assert entry == {**PIHOLE, "var": "vault_pihole_admin", "length": 32, "charset": "alnum", "interval_days": 90}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"kind": "pihole_admin", "servers": ["x"]}, "name: required"),
        ({**PIHOLE, "name": "Bad-Name"}, "name: required; lower case"),
        ({**PIHOLE, "kind": "ldap"}, "kind: got 'ldap'; accepted: pihole_admin, k8s_secret"),
        ({**PIHOLE, "servers": []}, "servers: required for kind pihole_admin"),
        ({**PIHOLE, "servers": "http://x"}, "servers: a list of Pi-hole base URLs"),
        ({**PIHOLE, "length": 8}, "length: must be between 12 and 256, got 8"),
        ({**PIHOLE, "length": "long"}, "length: must be an integer"),
        ({**PIHOLE, "charset": "emoji"}, "charset: got 'emoji'; accepted: alnum, alnum_symbols, hex, urlsafe"),
        ({**PIHOLE, "password": "x"}, "password: unknown field for kind pihole_admin (accepted:"),
        ({**PIHOLE, "var": "vault_credentials_state"}, "var: a variable name other than"),
        ({**SECRET, "restart": [{"kind": "Pod", "name": "x"}]}, "restart: items need kind (Deployment"),
        (
            {
                "name": "db",
                "kind": "postgres_role",
                "role": "app",
                "login_host": "h",
                "login_user": "u",
                "login_password_var": "{{ vault_pg }}",
            },
            "login_password_var: the NAME of the vault key",
        ),
        ({"name": "nas", "kind": "command", "apply": "echo $X"}, "apply: an argv list of strings"),
        ({"name": "k3s", "kind": "k3s_token", "servers": ["a"]}, "servers: the name of an inventory group"),
        ({"name": "nas", "kind": "command", "apply": ["true"], "env_new": "A;rm"}, "env_new: an environment variable"),
    ],
)
def test_bad_entries_name_the_field(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(RegistryError, match=None) as info:
        validate_registry([entry])
    assert message in str(info.value)
    assert str(info.value).startswith("credentials_registry[0]")


def test_duplicates_are_refused() -> None:
    with pytest.raises(RegistryError, match=r"\[1\] \(pihole_admin\): name: duplicate of entry 0"):
        validate_registry([PIHOLE, PIHOLE])
    with pytest.raises(RegistryError, match="var: vault_x is already used by pihole_admin"):
        validate_registry([{**PIHOLE, "var": "vault_x"}, {**SECRET, "var": "vault_x"}])
    with pytest.raises(RegistryError, match="must be a list"):
        validate_registry({"name": "x"})


@pytest.mark.parametrize(
    ("state", "force", "expected"),
    [
        ({}, False, "never rotated"),
        ({"rotated_at": format_time(NOW - timedelta(days=10))}, False, None),
        ({"rotated_at": format_time(NOW - timedelta(days=10))}, True, "forced"),
        ({"rotated_at": format_time(NOW - timedelta(days=30))}, False, "last rotated 2026-10-27T02:00:00Z"),
        ({"rotated_at": "garbage"}, False, "never rotated"),
        ({"rotated_at": format_time(NOW), "phase": "applied", "has_pending": True}, False, "resume: a rotation"),
    ],
)
def test_due_reason(state: dict[str, Any], force: bool, expected: str | None) -> None:
    [entry] = validate_registry([{**PIHOLE, "interval_days": 30}])
    reason = due_reason(entry, state, NOW, force=force)
    assert (reason is None) if expected is None else (reason is not None and reason.startswith(expected))


def test_plan_only_and_skips() -> None:
    registry = validate_registry([PIHOLE, SECRET])
    states = {"grafana": {"rotated_at": format_time(NOW - timedelta(days=1))}}
    result = plan(registry, states, NOW)
    assert [d["name"] for d in result["due"]] == ["pihole_admin"]
    assert result["skipped"] == [{"name": "grafana", "reason": "not due until 2027-02-23T02:00:00Z"}]
    only = plan(registry, states, NOW, only="grafana")  # naming one rotates it, due or not
    assert [d["name"] for d in only["due"]] == ["grafana"]
    assert only["skipped"][0]["reason"] == "not selected (only=grafana)"
    with pytest.raises(RegistryError, match=r"only: no credential named 'nope' .*pihole_admin, grafana"):
        plan(registry, states, NOW, only="nope")


def test_full_rotation_then_resume_and_rollback() -> None:
    state, current = transition({}, "old", "stage", NOW, "new")
    assert state == {"pending": "new", "phase": "pending", "pending_since": "2026-11-26T02:00:00Z"}
    assert current == "old"
    # a resumed run keeps the pending value it may already have applied
    again, _current = transition(state, "old", "stage", NOW, "other")
    assert again["pending"] == "new"
    with pytest.raises(TransitionError, match="promote: the rotation is at phase 'pending'; accepted: verified"):
        transition(state, "old", "promote", NOW)
    with pytest.raises(TransitionError, match=r"verified: .* accepted: applied, verified"):
        transition(state, "old", "verified", NOW)
    state, _current = transition(state, "old", "applied", NOW)
    state, _current = transition(state, "old", "verified", NOW)
    later = NOW + timedelta(hours=1)
    promoted, current = transition(state, "old", "promote", later)
    assert current == "new"
    assert promoted == {"previous": "old", "rotated_at": "2026-11-26T03:00:00Z"}
    assert public_state(promoted) == {
        "phase": "",
        "rotated_at": "2026-11-26T03:00:00Z",
        "pending_since": "",
        "has_pending": False,
        "has_previous": True,
    }
    with pytest.raises(TransitionError, match="applied: there is no pending value"):
        transition(promoted, "new", "applied", NOW)
    staged, _current = transition(promoted, "new", "stage", NOW, "newer")
    applied, _current = transition(staged, "new", "applied", NOW)
    rolled, current = transition(applied, "new", "rollback", NOW)
    assert current == "new" and rolled == promoted  # back to exactly the state before
    with pytest.raises(TransitionError, match="transition: got 'jump'"):
        transition({}, None, "jump", NOW)


def test_promote_without_a_current_value_keeps_no_previous() -> None:
    state, _current = transition({}, None, "stage", NOW, "first")
    state = transition(transition(state, None, "applied", NOW)[0], None, "verified", NOW)[0]
    promoted, current = transition(state, None, "promote", NOW)
    assert current == "first" and "previous" not in promoted


@pytest.mark.parametrize("charset", sorted(CHARSETS))
def test_generate_respects_the_policy(charset: str) -> None:
    values = {generate(20, charset) for _index in range(50)}
    assert len(values) == 50
    for value in values:
        assert len(value) == 20 and set(value) <= set(CHARSETS[charset])
        if charset.startswith("alnum"):
            assert any(c in string.digits for c in value) and any(c.isupper() for c in value)
    for value in (generate(64, "alnum_symbols") for _index in range(20)):
        assert not set(value) & set("'\"\\$`{} \n")  # safe in YAML, shells, SQL, Jinja
    with pytest.raises(CredentialError, match="length: must be between 12 and 256, got 4"):
        generate(4)
    with pytest.raises(CredentialError, match="charset: got 'x'"):
        generate(20, "x")


def test_scram_verifier_matches_rfc_7677() -> None:
    """The verifier PostgreSQL stores; recomputed here from RFC 5802's definitions."""
    salt = bytes(range(16))
    verifier = scram_sha256_verifier("pencil", salt=salt, iterations=4096)
    method, rest = verifier.split("$", 1)
    iterations_salt, keys = rest.split("$")
    iterations, salt_b64 = iterations_salt.split(":")
    stored_b64, server_b64 = keys.split(":")
    assert method == "SCRAM-SHA-256" and iterations == "4096" and base64.b64decode(salt_b64) == salt
    salted = hashlib.pbkdf2_hmac("sha256", b"pencil", salt, 4096)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    assert base64.b64decode(stored_b64) == hashlib.sha256(client_key).digest()
    assert base64.b64decode(server_b64) == hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    assert scram_sha256_verifier("pencil") != scram_sha256_verifier("pencil")  # a fresh salt each time
