"""The review UI's Host check (DNS rebinding): which ``Host`` headers a server bound to an address accepts."""

from __future__ import annotations

import socket

import pytest

from maslow.errors import MaslowError
from maslow.ui.app import allowed_hosts, host_allowed


@pytest.mark.parametrize(("bind", "allow", "header", "ok"), [
    pytest.param("127.0.0.1", (), "127.0.0.1:8765", True, id="the-address"),
    pytest.param("127.0.0.1", (), "localhost:8765", True, id="localhost"),
    pytest.param("127.0.0.1", (), "evil.example:8765", False, id="rebound-name"),
    pytest.param("127.0.0.1", (), "127.0.0.1.evil.example", False, id="address-prefixed-name"),
    pytest.param("127.0.0.1", (), "evil.example@127.0.0.1", False, id="userinfo"),
    pytest.param("127.0.0.1", (), "", False, id="no-host"),
    pytest.param("127.0.0.1", (), "::1", False, id="ipv6-without-brackets"),
    pytest.param("0.0.0.0", (), "box.lan:8765", False, id="wildcard-other-name"),
    pytest.param("::", (), "evil.example", False, id="wildcard-v6-other-name"),
    pytest.param("0.0.0.0", (), "10.1.2.3:8765", True, id="wildcard-an-address"),
    pytest.param("0.0.0.0", (), "[fe80::1]:8765", True, id="wildcard-an-ipv6-address"),
    pytest.param("::", (), "[::1]", True, id="wildcard-v6-loopback"),
    pytest.param("0.0.0.0", ("box.lan",), "BOX.LAN.:8765", True, id="allowed-name-any-case-final-dot"),
    pytest.param("0.0.0.0", ("*.corp.example",), "a.b.corp.example:80", True, id="allowed-subdomain"),
    pytest.param("0.0.0.0", ("*.corp.example",), "corp.example", False, id="pattern-not-the-domain"),
    pytest.param("0.0.0.0", ("*.corp.example",), "evilcorp.example", False, id="pattern-not-a-suffix"),
    pytest.param("0.0.0.0", ("*",), "anything.example", True, id="allow-any"),
    pytest.param("127.0.0.1", ("box.lan",), "box.lan", True, id="allowed-with-a-specific-address"),
])
def test_host_header_check(bind: str, allow: tuple[str, ...], header: str, ok: bool) -> None:
    assert host_allowed(header, allowed_hosts(bind, allow)) is ok


def test_a_wildcard_address_accepts_the_machines_own_names() -> None:
    names = allowed_hosts("0.0.0.0")
    name = socket.gethostname()
    assert host_allowed(f"{name}:8765", names) and host_allowed(socket.getfqdn(), names)


@pytest.mark.parametrize("bad", ["http://box.lan", "box.lan:8765", "a b", "*box", "box.*", ""])
def test_allow_host_must_be_a_name_or_pattern(bad: str) -> None:
    with pytest.raises(MaslowError, match="--allow-host must be a host name"):
        allowed_hosts("0.0.0.0", [bad])


def test_a_hanging_resolver_does_not_hold_up_the_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where DNS is broken ``getfqdn`` can hang for many seconds: the server starts with the host name alone."""
    import threading
    import time

    from maslow.ui import app

    release = threading.Event()

    def hanging_fqdn(name: str = "") -> str:
        release.wait(30)
        return "late.example.org"

    monkeypatch.setattr(socket, "getfqdn", hanging_fqdn)
    try:
        t0 = time.monotonic()
        names = app._own_names(timeout=0.2)
        assert time.monotonic() - t0 < 5
        assert names == (socket.gethostname().lower().rstrip("."),)
    finally:
        release.set()
