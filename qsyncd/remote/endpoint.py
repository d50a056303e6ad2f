"""Where a QingStor bucket lives: the parsed endpoint, and the host, Host header and URL the zone makes of it."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Endpoint:
    """A parsed ``scheme://host[:port]`` endpoint."""

    scheme: str
    host: str  # IPv6 literals keep their brackets, as the SDK pastes host and port together
    port: int

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}" + ("" if self.port == self.default_port else f":{self.port}")

    @property
    def default_port(self) -> int:
        """443 for https, 80 for http."""
        return 443 if self.scheme == "https" else 80


def parse_endpoint(endpoint: str) -> Endpoint:
    """Parse ``http(s)://host[:port]`` (default port 80/443); anything else is a ``ValueError``."""
    hint = "expected scheme://host[:port], e.g. https://qingstor.com or http://127.0.0.1:9000"
    if not isinstance(endpoint, str) or not endpoint:
        raise ValueError(f"endpoint is empty: {hint}")
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"endpoint {endpoint!r} must start with http:// or https://: {hint}")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"endpoint must not contain credentials: {hint}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or "?" in endpoint or "#" in endpoint:
        raise ValueError(f"endpoint {endpoint!r} must not have a path, query or fragment: {hint}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"endpoint {endpoint!r} has an invalid port: {hint}") from None
    host = parts.hostname
    if not host or any(c.isspace() for c in host):
        raise ValueError(f"endpoint {endpoint!r} has no valid host: {hint}")
    if port == 0:
        raise ValueError(f"endpoint {endpoint!r} has port 0: {hint}")
    if ":" in host:
        host = f"[{host}]"
    return Endpoint(parts.scheme, host, port or (443 if parts.scheme == "https" else 80))


@dataclass(frozen=True)
class ZoneSite:
    """An endpoint with the zone put in front of its host, as the SDK addresses a bucket."""

    endpoint: Endpoint
    zone: str  # "" for no zone prefix (e.g. a local emulator)

    @property
    def zone_host(self) -> str:
        """The host contacted: ``zone.host`` (or the host alone without a zone)."""
        return f"{self.zone}.{self.endpoint.host}" if self.zone else self.endpoint.host

    @property
    def host(self) -> str:
        """The Host header, as the SDK's Builder.parse_request_host writes it (no port when it is the default)."""
        ep = self.endpoint
        return self.zone_host + ("" if ep.port == ep.default_port else f":{ep.port}")

    @property
    def base_url(self) -> str:
        """``scheme://host[:port]`` of the requests."""
        return f"{self.endpoint.scheme}://{self.host}"

    @property
    def contacted(self) -> str:
        """What error messages name: the URL actually contacted, and how the zone made it."""
        if not self.zone:
            return self.base_url
        return f"{self.base_url} (zone {self.zone!r} put in front of the host of endpoint {self.endpoint})"
