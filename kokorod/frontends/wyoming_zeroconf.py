"""mDNS advertisement of the Wyoming server, so Home Assistant discovers it
(Settings → Devices & services shows a "Discovered: Wyoming Protocol" card).

The service is ``_wyoming._tcp.local.``, instance ``NAME._wyoming._tcp.local.``,
as wyoming-piper's ``--zeroconf`` advertises it, and is withdrawn (goodbye
packets) on shutdown.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from typing import Any

from zeroconf import InterfaceChoice
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from kokorod import __version__
from kokorod.auth import is_loopback

log = logging.getLogger("kokorod.wyoming")
SERVICE_TYPE = "_wyoming._tcp.local."
MDNS_GROUP = "224.0.0.251"


def _unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return host in ("", "*")


def advertised_address(host: str) -> str:
    """The address Home Assistant should connect to for a server bound to ``host``:
    ``host`` itself when it is an address, the machine's outgoing LAN address
    for an all-interfaces bind (``0.0.0.0``), a name resolved to IPv4."""
    if _unspecified(host):
        # A UDP "connect" sends nothing; it only asks the kernel which source
        # address would reach the mDNS group (wyoming's own trick).
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.connect((MDNS_GROUP, 1))
                return str(probe.getsockname()[0])
            except OSError:
                return "127.0.0.1"
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return socket.gethostbyname(host)


def service_info(name: str, address: str, port: int) -> AsyncServiceInfo:
    return AsyncServiceInfo(
        SERVICE_TYPE,
        f"{name}.{SERVICE_TYPE}",
        parsed_addresses=[address],
        port=port,
        properties={"program": "kokorod", "version": __version__},
        server=f"{name}.local.",
    )


class ZeroconfAdvertiser:
    """Registers the service on start, unregisters it on ``aclose``.

    A loopback-bound server is advertised on loopback only: telling the LAN
    about 127.0.0.1 would send every other machine to itself.
    """

    def __init__(self, name: str, host: str, port: int, *, interfaces: Any = None) -> None:
        self.address = advertised_address(host)
        self.port = port
        if interfaces is None:
            interfaces = [self.address] if is_loopback(self.address) else InterfaceChoice.All
        self.info = service_info(name, self.address, port)
        self._interfaces = interfaces
        self._zc: AsyncZeroconf | None = None
        self._registered = False

    @property
    def name(self) -> str:
        return str(self.info.name)  # may differ from the one asked for after a name conflict

    async def register(self) -> None:
        self._zc = AsyncZeroconf(interfaces=self._interfaces)
        try:
            # Returns a task that ends when the announcement is done; a name
            # another machine already uses gets a "-2" suffix instead of failing.
            await (await self._zc.async_register_service(self.info, allow_name_change=True))
        except BaseException:
            await self._zc.async_close()
            self._zc = None
            raise
        self._registered = True
        log.info("zeroconf: advertising %s at %s:%d", self.name, self.address, self.port,
                 extra={"event": "zeroconf", "fields": {"name": self.name, "address": self.address, "port": self.port}})
        if is_loopback(self.address):
            log.warning("zeroconf: the Wyoming server listens on loopback (%s), so only this machine can use it; "
                        "bind --wyoming-uri to a LAN address (with --insecure) for Home Assistant elsewhere", self.address)

    async def aclose(self) -> None:
        zc, self._zc = self._zc, None
        if zc is None:
            return
        try:
            if self._registered:
                self._registered = False
                await (await zc.async_unregister_service(self.info))
        except Exception as exc:  # never let discovery break shutdown
            log.warning("zeroconf: unregistering %s failed: %s", self.name, exc)
        finally:
            await zc.async_close()
