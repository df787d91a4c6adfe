"""Zeroconf advertisement of the Wyoming server: the service record Home
Assistant discovers, and registering/unregistering it on loopback."""

from __future__ import annotations

import socket

import pytest
from zeroconf.asyncio import AsyncZeroconf

from kokorod.frontends.wyoming_zeroconf import SERVICE_TYPE, ZeroconfAdvertiser, advertised_address, service_info


def test_service_info_is_what_home_assistant_browses_for() -> None:
    info = service_info("kitchen", "192.168.1.20", 10200)
    assert SERVICE_TYPE == "_wyoming._tcp.local."
    assert info.type == "_wyoming._tcp.local." and info.name == "kitchen._wyoming._tcp.local."
    assert info.port == 10200 and info.parsed_addresses() == ["192.168.1.20"]
    assert info.properties[b"program"] == b"kokorod"
    assert service_info("k", "fd00::2", 1).parsed_addresses() == ["fd00::2"]


def test_advertised_address() -> None:
    assert advertised_address("127.0.0.1") == "127.0.0.1"
    assert advertised_address("192.168.1.20") == "192.168.1.20"
    assert advertised_address("localhost") == "127.0.0.1"
    lan = advertised_address("0.0.0.0")  # all interfaces: the address that reaches the LAN
    socket.inet_aton(lan)
    assert ZeroconfAdvertiser("k", "127.0.0.1", 1)._interfaces == ["127.0.0.1"]  # loopback stays on loopback


async def _lookup(name: str) -> object:
    browser = AsyncZeroconf(interfaces=["127.0.0.1"])
    try:
        return await browser.async_get_service_info(SERVICE_TYPE, name, timeout=1500)
    finally:
        await browser.async_close()


async def test_register_and_unregister_on_loopback() -> None:
    advertiser = ZeroconfAdvertiser("kokorod-test", "127.0.0.1", 10299)
    try:
        await advertiser.register()  # registering works even where nobody can hear it
    except OSError as exc:
        pytest.skip(f"cannot open an mDNS socket on loopback here: {exc}")
    try:
        found = await _lookup(advertiser.name)
        if found is None:
            pytest.skip("multicast on the loopback interface does not deliver here (lo has no MULTICAST flag); "
                        "the registration itself succeeded, only the network round trip is unverified")
        assert found.port == 10299 and found.parsed_addresses() == ["127.0.0.1"]  # type: ignore[attr-defined]
    finally:
        await advertiser.aclose()
    assert await _lookup(advertiser.name) is None  # withdrawn
    await advertiser.aclose()  # idempotent
