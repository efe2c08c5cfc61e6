"""The web configuration file, in the format every Prometheus exporter shares.

Same file as the Prometheus exporter-toolkit's ``--web.config.file``
(``docs/web-configuration.md`` in prometheus/exporter-toolkit), so operators
reuse what they have: ``tls_server_config`` (files or inline PEM, client
certificates with allowed SANs, TLS versions, cipher suites, curves),
``http_server_config`` (``http2``, security headers), ``basic_auth_users``
(bcrypt hashes) and ``rate_limit``. Everything is validated at load, so a bad
hash or an unusable TLS setting stops start-up with the file, line and field
instead of failing every request later. How credentials are checked lives in
:mod:`.basicauth`.
"""

from __future__ import annotations

import re
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from wattfleet.core.basicauth import BasicAuth, BasicAuthError
from wattfleet.core.yamlpos import YamlPositionError, first_alias_line, read_config_text


class WebConfigError(ValueError):
    """A web config file is invalid; the message names the file, line and field."""


CLIENT_AUTH_TYPES = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_OPTIONAL,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
TLS_VERSIONS = {"TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1,
                "TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}

# Go's crypto/tls names (what exporter-toolkit files contain) -> OpenSSL names. These are the suites
# Go's tls.CipherSuites() lists for TLS 1.0-1.2; the TLS 1.3 suites are accepted and, as in Go, not
# configurable. Go's tls.InsecureCipherSuites() are refused, as the exporter-toolkit refuses them.
CIPHER_SUITES = {
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
}
TLS13_SUITES = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}
CURVES = {"CurveP256": "prime256v1", "CurveP384": "secp384r1", "CurveP521": "secp521r1", "X25519": "X25519"}
SECURITY_HEADERS = {
    "Content-Security-Policy": None,
    "X-Frame-Options": {"deny", "sameorigin"},
    "X-Content-Type-Options": {"nosniff"},
    "X-XSS-Protection": None,
    "Strict-Transport-Security": None,
}
_TLS_KEYS = {"cert", "key", "client_ca", "cert_file", "key_file", "client_ca_file", "client_auth_type",
             "client_allowed_sans", "min_version", "max_version", "cipher_suites",
             "prefer_server_cipher_suites", "curve_preferences"}
_HTTP_KEYS = {"http2", "headers"}
_RATE_KEYS = {"interval", "burst"}
_TOP_KEYS = {"tls_server_config", "http_server_config", "basic_auth_users", "rate_limit"}
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$")


@dataclass
class WebConfig:
    """A validated web config; the defaults serve plain HTTP without authentication."""

    cert_file: Path | None = None
    key_file: Path | None = None
    client_ca_file: Path | None = None
    client_auth_type: str = "NoClientCert"
    client_allowed_sans: tuple[str, ...] = ()
    min_version: str = "TLS12"
    max_version: str = "TLS13"
    cipher_suites: tuple[str, ...] = ()
    prefer_server_cipher_suites: bool = True
    curve_preferences: tuple[str, ...] = ()
    http2: bool = True
    headers: dict[str, str] = field(default_factory=dict)
    rate_limit_interval_seconds: float = 0.0
    rate_limit_burst: int = 0
    users: dict[str, bytes] = field(default_factory=dict)
    _inline_pem: list[Path] = field(default_factory=list, repr=False)
    _auth: BasicAuth | None = field(default=None, repr=False)
    _context: ssl.SSLContext | None = field(default=None, repr=False)

    @property
    def tls(self) -> bool:
        return self.cert_file is not None

    @property
    def auth(self) -> BasicAuth:
        """The credential checker for ``users`` (built once; it holds the cache and the attempt budget)."""
        if self._auth is None:
            self._auth = BasicAuth(self.users)
        return self._auth

    def check_basic_auth(self, user: str, password: str) -> bool:
        return self.auth.check(user, password)

    def ssl_context(self) -> ssl.SSLContext | None:
        """The server-side TLS context, or None for plain HTTP (built once: it holds the loaded key)."""
        if not self.tls:
            return None
        if self._context is not None:
            return self._context
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = TLS_VERSIONS[self.min_version]
        ctx.maximum_version = TLS_VERSIONS[self.max_version]
        ctx.load_cert_chain(str(self.cert_file), str(self.key_file))
        ctx.verify_mode = CLIENT_AUTH_TYPES[self.client_auth_type]
        if self.client_ca_file is not None:
            ctx.load_verify_locations(str(self.client_ca_file))
        suites = [CIPHER_SUITES[s] for s in self.cipher_suites if s in CIPHER_SUITES]
        if suites:
            ctx.set_ciphers(":".join(suites))
        if self.prefer_server_cipher_suites:
            ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
        if self.curve_preferences:
            # Python's ssl module sets one ECDHE curve; the list's first (most preferred) is used.
            ctx.set_ecdh_curve(CURVES[self.curve_preferences[0]])
        self._context = ctx
        return ctx

    def client_allowed(self, peer_cert: dict[str, Any] | None) -> bool:
        """True unless ``client_allowed_sans`` is set and the client certificate has none of them."""
        if not self.client_allowed_sans:
            return True
        if not peer_cert:
            return False
        sans = {value for _kind, value in peer_cert.get("subjectAltName", ())}
        return any(allowed in sans for allowed in self.client_allowed_sans)


class _Lines:
    """Dotted field -> 1-based line, from the composed YAML node tree, for error messages."""

    def __init__(self, node: yaml.Node | None) -> None:
        self.lines: dict[str, int] = {}
        self._walk(node, "")

    def _walk(self, node: yaml.Node | None, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                dotted = f"{prefix}{key.value}"
                self.lines[dotted] = key.start_mark.line + 1
                self._walk(value, dotted + ".")

    def error(self, path: Path, field_name: str, message: str) -> WebConfigError:
        line = self.lines.get(field_name) or self.lines.get(field_name.rsplit(".", 1)[0])
        where = f"line {line}: " if line else ""
        return WebConfigError(f"{path}: {where}{field_name}: {message}")


def _mapping(lines: _Lines, path: Path, raw: Any, name: str, allowed: set[str]) -> dict[str, Any]:
    value = raw.get(name) or {}
    if not isinstance(value, dict):
        raise lines.error(path, name, "must be a mapping")
    for key in value:
        if key not in allowed:
            raise lines.error(path, f"{name}.{key}", f"unknown field (expected one of {sorted(allowed)})")
    return value


def _strings(lines: _Lines, path: Path, value: Any, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise lines.error(path, name, "must be a list of strings")
    return tuple(value)


def _duration_seconds(text: Any) -> float | None:
    """Prometheus duration (``1s``, ``500ms``, ``1m30s``) or a number of seconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    m = _DURATION.match(str(text))
    if not m or not any(m.groups()):
        return None
    h, mi, s, ms = (int(g or 0) for g in m.groups())
    return h * 3600 + mi * 60 + s + ms / 1000


class _Loader:
    """One pass over a parsed web config; each step validates one section."""

    def __init__(self, path: Path, raw: dict[str, Any], lines: _Lines) -> None:
        self.path, self.raw, self.lines, self.cfg = path, raw, lines, WebConfig()

    def err(self, field_name: str, message: str) -> WebConfigError:
        return self.lines.error(self.path, field_name, message)

    def _file(self, tls: dict[str, Any], file_key: str, inline_key: str, required: bool) -> Path | None:
        if tls.get(file_key) and tls.get(inline_key):
            raise self.err(f"tls_server_config.{inline_key}", f"give {file_key} or {inline_key}, not both")
        if tls.get(inline_key):
            text = tls[inline_key]
            if not isinstance(text, str) or "-----BEGIN" not in text:
                raise self.err(f"tls_server_config.{inline_key}", "must be PEM text")
            # ssl loads certificates from files only: keep the inline PEM in a private temp file.
            fd, name = tempfile.mkstemp(prefix="wattfleet-web-", suffix=".pem")
            with open(fd, "w") as fh:
                fh.write(text)
            self.cfg._inline_pem.append(Path(name))
            return Path(name)
        if tls.get(file_key):
            file = Path(str(tls[file_key]))
            file = file if file.is_absolute() else self.path.parent / file
            if not file.is_file():
                raise self.err(f"tls_server_config.{file_key}", f"file not found: {file}")
            return file
        if required:
            raise self.err(f"tls_server_config.{file_key}", "required when TLS is configured")
        return None

    def tls(self) -> None:
        tls = _mapping(self.lines, self.path, self.raw, "tls_server_config", _TLS_KEYS)
        if not tls:
            return
        cfg = self.cfg
        cfg.cert_file = self._file(tls, "cert_file", "cert", True)
        cfg.key_file = self._file(tls, "key_file", "key", True)
        cfg.client_ca_file = self._file(tls, "client_ca_file", "client_ca", False)
        auth = tls.get("client_auth_type", "NoClientCert")
        if auth not in CLIENT_AUTH_TYPES:
            raise self.err("tls_server_config.client_auth_type", f"{auth!r} is not one of {sorted(CLIENT_AUTH_TYPES)}")
        if auth != "NoClientCert" and cfg.client_ca_file is None:
            # OpenSSL verifies every client certificate it asks for; without a CA nothing would
            # verify, and the server would start and then refuse every client.
            raise self.err("tls_server_config.client_ca_file",
                           f"required for {auth}: the TLS stack verifies client certificates against it")
        cfg.client_auth_type = auth
        cfg.client_allowed_sans = _strings(self.lines, self.path, tls.get("client_allowed_sans"),
                                           "tls_server_config.client_allowed_sans")
        if cfg.client_allowed_sans and auth not in ("RequireAnyClientCert", "RequireAndVerifyClientCert"):
            raise self.err("tls_server_config.client_allowed_sans",
                           "needs client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert")
        for key, default in (("min_version", "TLS12"), ("max_version", "TLS13")):
            version = tls.get(key, default)
            if version not in TLS_VERSIONS:
                raise self.err(f"tls_server_config.{key}", f"{version!r} is not one of {sorted(TLS_VERSIONS)}")
            setattr(cfg, key, version)
        if TLS_VERSIONS[cfg.min_version] > TLS_VERSIONS[cfg.max_version]:
            raise self.err("tls_server_config.max_version", f"{cfg.max_version} is below min_version {cfg.min_version}")
        cfg.cipher_suites = _strings(self.lines, self.path, tls.get("cipher_suites"), "tls_server_config.cipher_suites")
        for suite in cfg.cipher_suites:
            if suite not in CIPHER_SUITES and suite not in TLS13_SUITES:
                raise self.err("tls_server_config.cipher_suites",
                               f"{suite!r} is not a supported (secure) cipher suite; expected Go names such as "
                               "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
        prefer = tls.get("prefer_server_cipher_suites", True)
        if not isinstance(prefer, bool):
            raise self.err("tls_server_config.prefer_server_cipher_suites", "must be true or false")
        cfg.prefer_server_cipher_suites = prefer
        cfg.curve_preferences = _strings(self.lines, self.path, tls.get("curve_preferences"),
                                         "tls_server_config.curve_preferences")
        for curve in cfg.curve_preferences:
            if curve not in CURVES:
                raise self.err("tls_server_config.curve_preferences", f"{curve!r} is not one of {sorted(CURVES)}")

    def http(self) -> None:
        http = _mapping(self.lines, self.path, self.raw, "http_server_config", _HTTP_KEYS)
        http2 = http.get("http2", True)
        if not isinstance(http2, bool):
            raise self.err("http_server_config.http2", "must be true or false")
        self.cfg.http2 = http2  # accepted for compatibility; this server speaks HTTP/1.1
        headers = http.get("headers") or {}
        if not isinstance(headers, dict):
            raise self.err("http_server_config.headers", "must be a mapping")
        for name, value in headers.items():
            if name not in SECURITY_HEADERS:
                raise self.err(f"http_server_config.headers.{name}", f"not one of {sorted(SECURITY_HEADERS)}")
            allowed = SECURITY_HEADERS[name]
            text = "" if value is None else str(value)
            if text and allowed is not None and text.lower() not in allowed:
                raise self.err(f"http_server_config.headers.{name}", f"{text!r} is not one of {sorted(allowed)}")
            if "\n" in text or "\r" in text:
                raise self.err(f"http_server_config.headers.{name}", "must be one line")
            if text:
                self.cfg.headers[name] = text

    def rate_limit(self) -> None:
        rate = _mapping(self.lines, self.path, self.raw, "rate_limit", _RATE_KEYS)
        if not rate:
            return
        interval = _duration_seconds(rate.get("interval", 0))
        if interval is None or interval < 0:
            raise self.err("rate_limit.interval", f"{rate.get('interval')!r} is not a duration such as 100ms or 1s")
        burst = rate.get("burst", 0)
        if not isinstance(burst, int) or isinstance(burst, bool) or burst < 0:
            raise self.err("rate_limit.burst", "must be a whole number >= 0")
        if interval > 0 and burst < 1:
            raise self.err("rate_limit.burst", "must be at least 1 when interval is set")
        self.cfg.rate_limit_interval_seconds, self.cfg.rate_limit_burst = interval, burst

    def users(self) -> None:
        users = self.raw.get("basic_auth_users") or {}
        if not isinstance(users, dict):
            raise self.err("basic_auth_users", "must map user names to bcrypt hashes")
        for user, hashed in users.items():
            try:
                BasicAuth.validate_hash(hashed)
            except BasicAuthError as exc:
                raise self.err(f"basic_auth_users.{user}", str(exc)) from None
            self.cfg.users[str(user)] = str(hashed).encode()

    def load(self) -> WebConfig:
        self.tls()
        self.http()
        self.rate_limit()
        self.users()
        try:
            self.cfg.ssl_context()
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise self.err("tls_server_config", f"cannot load certificate, key or TLS settings: {exc}") from exc
        finally:
            for pem in self.cfg._inline_pem:  # loaded into the context (or failed): no key left on disk
                pem.unlink(missing_ok=True)
        self.cfg.auth  # noqa: B018 - build the checker now: its dummy hash costs one bcrypt round at start-up
        return self.cfg


def load_web_config(path: str | Path) -> WebConfig:
    """Parse and validate a web config file; relative paths resolve beside it."""
    path = Path(path)
    try:
        text = read_config_text(path)
    except YamlPositionError as exc:
        raise WebConfigError(str(exc)) from None
    try:
        alias_line = first_alias_line(text)
        if alias_line is not None:
            raise WebConfigError(f"{path}: line {alias_line}: YAML anchors and aliases are not accepted")
        raw: Any = yaml.safe_load(text) or {}
        lines = _Lines(yaml.compose(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "?"
        raise WebConfigError(f"{path}: {where}: invalid YAML: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(raw, dict):
        raise lines.error(path, "(top level)", "must be a mapping")
    for key in raw:
        if key not in _TOP_KEYS:
            raise lines.error(path, str(key), f"unknown field (expected one of {sorted(_TOP_KEYS)})")
    return _Loader(path, raw, lines).load()
