"""Connection settings of the TastyTrade client: hosts, headers, timeouts, retries.

Hosts follow the reference (§1.1): production ``https://api.tastyworks.com``, certification
("cert", the sandbox) ``https://api.cert.tastyworks.com``. Any base URL may be given (the local
emulator runs on ``http://127.0.0.1:<port>``), but plain ``http://`` is refused unless the host is
the loopback interface (``127.0.0.0/8``, ``::1``, ``localhost``); TLS certificates are always
verified (an extra CA bundle may be named, verification cannot be switched off).

``Accept-Version``: the API is versioned by date (``YYYYMMDD``, §1.2). We send
:data:`DEFAULT_API_VERSION` (the order-api version ``20261012``; with it, ``GET /orders`` needs a
``start-date``, which the client always sends). The sandbox is reported to answer 404 on order
placement when the header is present (tastyware issue #291), so :meth:`TastytradeConfig.certification`
leaves it out (``api_version=None``) -- the only case in which the header is not sent.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from importlib import metadata

import attrs

from atomic_orders.backends.tastytrade.errors import InsecureTransportError

__all__ = [
    "CERTIFICATION_URL",
    "DEFAULT_API_VERSION",
    "PRODUCTION_URL",
    "PRODUCTION_STREAMER_URL",
    "CERTIFICATION_STREAMER_URL",
    "TastytradeConfig",
    "default_user_agent",
    "validate_base_url",
    "validate_streamer_url",
]

#: REST base URL of the production environment.
PRODUCTION_URL = "https://api.tastyworks.com"
#: REST base URL of the certification (sandbox) environment.
CERTIFICATION_URL = "https://api.cert.tastyworks.com"
#: Account streamer (websocket) of the production environment (reference §5).
PRODUCTION_STREAMER_URL = "wss://streamer.tastyworks.com"
#: Account streamer of the certification environment (reference §5).
CERTIFICATION_STREAMER_URL = "wss://streamer.cert.tastyworks.com"
#: The ``Accept-Version`` we speak (order-api version of 2026-10-12).
DEFAULT_API_VERSION = "20261012"


def _package_version() -> str:
    try:
        return metadata.version("atomic-orders")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.1.0"


def default_user_agent() -> str:
    """``atomic-orders/<version>`` (the API requires ``<product>/<version>``)."""
    return f"atomic-orders/{_package_version()}"


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _shown(url: str) -> str:
    """The URL as an error message may quote it: never user info, a query or a fragment (they carry
    passwords and tokens); such a URL is shown as ``scheme://host/...`` or not at all."""
    if not any(c in url for c in "@?#"):
        return repr(url)
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "<hidden: the URL may carry credentials>"
    if parts.scheme and host and "@" not in parts.path:
        return repr(f"{parts.scheme}://{host}/...")
    return "<hidden: the URL may carry credentials>"


def validate_base_url(url: str) -> str:
    """Return ``url`` without a trailing slash; refuse anything but https (or http to loopback).

    Raises :class:`InsecureTransportError`; the message never quotes user info, a query or a
    fragment (a URL with user info is refused first, whatever else is wrong with it).
    """
    if not isinstance(url, str) or not url:
        raise InsecureTransportError(f"base_url={url!r}: must be a non-empty URL")
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
    except ValueError:  # a malformed netloc (a bad IPv6 literal ...)
        raise InsecureTransportError(f"base_url={_shown(url)}: not a valid URL") from None
    if "@" in parts.netloc:
        raise InsecureTransportError("base_url must not embed credentials (user info before '@'); "
                                     "credentials are given to the client, never in the URL")
    if parts.scheme == "https" and host:
        pass
    elif parts.scheme == "http" and host:
        if not _is_loopback(host):
            raise InsecureTransportError(
                f"base_url={_shown(url)}: plain http is only allowed to the loopback interface "
                "(127.0.0.1, ::1, localhost); use https"
            )
    else:
        raise InsecureTransportError(f"base_url={_shown(url)}: must be an https:// URL (or http:// to loopback)")
    if parts.query or parts.fragment:
        raise InsecureTransportError(f"base_url={_shown(url)}: must not have a query or fragment")
    return url.rstrip("/")


def _check_url(_inst: object, _attr: object, value: str) -> None:
    validate_base_url(value)


def validate_streamer_url(url: str) -> str:
    """Return the account streamer URL; refuse anything but ``wss://`` (or ``ws://`` to loopback).

    The same rules as :func:`validate_base_url` (no user info, query or fragment; the message never
    quotes them), over the websocket schemes. Raises :class:`InsecureTransportError`.
    """
    if not isinstance(url, str) or not url.startswith(("wss://", "ws://")):
        shown = _shown(url) if isinstance(url, str) else repr(url)
        raise InsecureTransportError(f"streamer_url={shown}: must be a wss:// URL (or ws:// to loopback)")
    as_http = "https://" + url[len("wss://"):] if url.startswith("wss://") else "http://" + url[len("ws://"):]
    try:
        validate_base_url(as_http)
    except InsecureTransportError as err:
        raise InsecureTransportError(str(err).replace("base_url", "streamer_url").replace("https", "wss")
                                     .replace("http", "ws")) from None
    return url.rstrip("/")


def _check_streamer_url(_inst: object, _attr: object, value: str) -> None:
    validate_streamer_url(value)


def _strip_slash(value: str) -> str:
    return value.rstrip("/") if isinstance(value, str) else value


def _positive(_inst: object, attr: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{attr.name}={value!r}: must be a positive number")


def _non_negative_int(_inst: object, attr: attrs.Attribute[int], value: int) -> None:
    if type(value) is not int or value < 0:
        raise ValueError(f"{attr.name}={value!r}: must be an int >= 0")


def _account(_inst: object, _attr: object, value: str) -> None:
    if not isinstance(value, str) or not value or not value.isalnum():
        raise ValueError(f"account_number={value!r}: must be a non-empty alphanumeric string")


def _version(_inst: object, _attr: object, value: str | None) -> None:
    if value is not None and (not isinstance(value, str) or len(value) != 8 or not value.isdigit()):
        raise ValueError(f"api_version={value!r}: must be a date YYYYMMDD or None")


def _user_agent(_inst: object, _attr: object, value: str) -> None:
    if not isinstance(value, str) or "/" not in value or any(c.isspace() for c in value.split(" ")[0]):
        raise ValueError(f"user_agent={value!r}: must look like <product>/<version>")


def _codes(value: object) -> frozenset[str]:
    if isinstance(value, str) or not isinstance(value, (set, frozenset, list, tuple)) \
            or not all(isinstance(v, str) for v in value):
        raise ValueError(f"dry_run_blocking_warnings={value!r:.80}: must be a collection of warning codes")
    return frozenset(value)


@attrs.frozen
class TastytradeConfig:
    """Everything the client needs besides credentials (which live in :mod:`.auth`)."""

    account_number: str = attrs.field(validator=_account)
    base_url: str = attrs.field(default=PRODUCTION_URL, validator=_check_url, converter=_strip_slash)
    #: ``Accept-Version`` header value; ``None`` omits the header (sandbox, see the module doc).
    api_version: str | None = attrs.field(default=DEFAULT_API_VERSION, validator=_version)
    user_agent: str = attrs.field(factory=default_user_agent, validator=_user_agent)
    #: Seconds to establish a connection.
    connect_timeout: float = attrs.field(default=3.05, validator=_positive)
    #: Seconds to wait for the response once connected.
    read_timeout: float = attrs.field(default=10.0, validator=_positive)
    #: Extra attempts for idempotent requests (GET, DELETE) after the first.
    max_retries: int = attrs.field(default=3, validator=_non_negative_int)
    #: First backoff (seconds); doubles per attempt, capped at ``backoff_max``; full jitter.
    backoff_base: float = attrs.field(default=0.2, validator=_positive)
    backoff_max: float = attrs.field(default=5.0, validator=_positive)
    #: A 429's ``Retry-After`` longer than this is not waited for: the error is raised instead.
    max_retry_after: float = attrs.field(default=30.0, validator=_positive)
    #: Connection pool size (one pool per host).
    pool_maxsize: int = attrs.field(default=10, validator=_non_negative_int)
    #: Path of an extra CA bundle (TLS verification itself always stays on).
    ca_bundle: str | None = None
    #: Page size for order lists (the API's maximum is 200).
    page_size: int = attrs.field(default=200, validator=_non_negative_int)
    #: At most this many pages of order history are read when looking an order up.
    max_history_pages: int = attrs.field(default=10, validator=_non_negative_int)
    #: Pages of ``/orders/live`` one poll reads at most (one page of ``page_size`` orders is the
    #: ordinary case: one request per poll; our orders beyond them are read by id).
    max_live_pages: int = attrs.field(default=5, validator=_non_negative_int)
    #: Pages of the day's history ``find_orders`` reads at most (a claim of more is an error).
    max_find_pages: int = attrs.field(default=100, validator=_non_negative_int)
    #: Larger answers are refused as malformed before they are decoded (bytes).
    max_response_bytes: int = attrs.field(default=32 * 1024 * 1024, validator=_non_negative_int)
    #: The account streamer's websocket URL (used only when a streamer is wired in).
    streamer_url: str = attrs.field(default=PRODUCTION_STREAMER_URL, validator=_check_streamer_url,
                                    converter=_strip_slash)
    #: ``POST /orders/dry-run`` before each multi-leg entry order is sent; a refusal refuses the
    #: order with the broker's reason, nothing sent (see :mod:`.dry_run`). On by default for
    #: :meth:`production` (a refused preflight costs one request, a refused live order may leave
    #: a group half-built); off otherwise: the sandbox and the emulator answer dry runs with
    #: constant buying power, so there it costs a round trip and proves nothing.
    dry_run_before_submit: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    #: Dry-run ``warnings[].code`` values that refuse the order (none by default: the only
    #: recorded warning, ``tif_next_valid_sesssion``, says when the order works, not whether).
    dry_run_blocking_warnings: frozenset[str] = attrs.field(factory=frozenset, converter=_codes)

    @classmethod
    def production(cls, account_number: str, **kwargs: object) -> TastytradeConfig:
        """Settings for the production API (``dry_run_before_submit`` on unless given)."""
        kwargs.setdefault("dry_run_before_submit", True)
        return cls(account_number, PRODUCTION_URL, **kwargs)  # type: ignore[arg-type]

    @classmethod
    def certification(cls, account_number: str, **kwargs: object) -> TastytradeConfig:
        """Settings for the certification sandbox (no ``Accept-Version``, see the module doc)."""
        kwargs.setdefault("api_version", None)
        kwargs.setdefault("streamer_url", CERTIFICATION_STREAMER_URL)
        return cls(account_number, CERTIFICATION_URL, **kwargs)  # type: ignore[arg-type]

    @property
    def timeout(self) -> tuple[float, float]:
        """``(connect, read)`` timeouts as ``requests`` takes them."""
        return (float(self.connect_timeout), float(self.read_timeout))
