"""The web configuration file, in the format Prometheus exporters share.

Same keys as the Prometheus exporter-toolkit's ``--web.config.file`` so that
operators reuse what they have: ``tls_server_config`` (``cert_file``,
``key_file``, ``client_ca_file``, ``client_auth_type``, ``min_version``) and
``basic_auth_users`` (user -> bcrypt hash). Errors name the file and field.
"""

from __future__ import annotations

import hashlib
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import yaml


class WebConfigError(ValueError):
    """A web config file is invalid; the message names the file and field."""


CLIENT_AUTH_TYPES = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_OPTIONAL,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
TLS_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
_TLS_KEYS = {"cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version"}
_DUMMY_HASH = b"$2b$10$EyOtU8Nc8keA6SKo6upWae2SKJmBcqDoDm8sRIjUP88biJLjFfCUi"
_TOP_KEYS = {"tls_server_config", "basic_auth_users", "http_server_config"}


@dataclass
class WebConfig:
    cert_file: Path | None = None
    key_file: Path | None = None
    client_ca_file: Path | None = None
    client_auth_type: str = "NoClientCert"
    min_version: str = "TLS12"
    users: dict[str, bytes] = field(default_factory=dict)
    _verified: dict[tuple[str, bytes], bool] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def tls(self) -> bool:
        return self.cert_file is not None

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = TLS_VERSIONS[self.min_version]
        ctx.load_cert_chain(str(self.cert_file), str(self.key_file))
        ctx.verify_mode = CLIENT_AUTH_TYPES[self.client_auth_type]
        if self.client_ca_file is not None:
            ctx.load_verify_locations(str(self.client_ca_file))
        return ctx

    def check_basic_auth(self, user: str, password: str) -> bool:
        """True when no users are configured, or the bcrypt hash matches.

        bcrypt is slow on purpose, so a verified (user, password) pair is
        remembered by its SHA-256; scrapes every second then cost a hash lookup.
        """
        if not self.users:
            return True
        hashed = self.users.get(user)
        key = (user, hashlib.sha256(password.encode()).digest())
        with self._lock:
            cached = self._verified.get(key)
        if cached is not None:
            return cached
        # Unknown users are checked against a dummy hash too, so that the
        # response time does not tell which user names exist.
        ok = bcrypt.checkpw(password.encode(), hashed or _DUMMY_HASH) and hashed is not None
        with self._lock:
            if len(self._verified) > 1024:
                self._verified.clear()
            self._verified[key] = ok
        return ok


def _key_lines(node: yaml.Node | None, prefix: str = "") -> dict[str, int]:
    """Dotted key path -> 1-based line, from the composed YAML node tree."""
    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            dotted = f"{prefix}{key.value}"
            lines[dotted] = key.start_mark.line + 1
            lines.update(_key_lines(value, dotted + "."))
    return lines


def _field_error(lines: dict[str, int], path: Path, field_name: str, message: str) -> WebConfigError:
    line = lines.get(field_name) or lines.get(field_name.rsplit(".", 1)[0])
    where = f"line {line}: " if line else ""
    return WebConfigError(f"{path}: {where}{field_name}: {message}")


def load_web_config(path: str | Path) -> WebConfig:
    """Parse and validate a web config file; relative paths resolve beside it."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise WebConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        raw: Any = yaml.safe_load(text) or {}
        lines = _key_lines(yaml.compose(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "?"
        raise WebConfigError(f"{path}: {where}: invalid YAML: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(raw, dict):
        raise _field_error(lines, path, "(top level)", "must be a mapping")
    for key in raw:
        if key not in _TOP_KEYS:
            raise _field_error(lines, path, str(key), f"unknown field (expected one of {sorted(_TOP_KEYS)})")
    cfg = WebConfig()
    tls = raw.get("tls_server_config") or {}
    if not isinstance(tls, dict):
        raise _field_error(lines, path, "tls_server_config", "must be a mapping")
    for key in tls:
        if key not in _TLS_KEYS:
            raise _field_error(lines, path, f"tls_server_config.{key}", "unknown field")
    if tls:
        for key in ("cert_file", "key_file"):
            if not tls.get(key):
                raise _field_error(lines, path, f"tls_server_config.{key}", "required when TLS is configured")
        for key in ("cert_file", "key_file", "client_ca_file"):
            if tls.get(key):
                file = Path(tls[key])
                file = file if file.is_absolute() else path.parent / file
                if not file.is_file():
                    raise _field_error(lines, path, f"tls_server_config.{key}", f"file not found: {file}")
                setattr(cfg, key, file)
        auth = tls.get("client_auth_type", "NoClientCert")
        if auth not in CLIENT_AUTH_TYPES:
            raise _field_error(lines, path, "tls_server_config.client_auth_type",
                               f"{auth!r} is not one of {sorted(CLIENT_AUTH_TYPES)}")
        if auth != "NoClientCert" and "Verify" in auth and cfg.client_ca_file is None:
            raise _field_error(lines, path, "tls_server_config.client_ca_file", f"required for {auth}")
        cfg.client_auth_type = auth
        version = tls.get("min_version", "TLS12")
        if version not in TLS_VERSIONS:
            raise _field_error(lines, path, "tls_server_config.min_version",
                               f"{version!r} is not one of {sorted(TLS_VERSIONS)}")
        cfg.min_version = version
    users = raw.get("basic_auth_users") or {}
    if not isinstance(users, dict):
        raise _field_error(lines, path, "basic_auth_users", "must map user names to bcrypt hashes")
    for user, hashed in users.items():
        if not isinstance(hashed, str) or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            raise _field_error(lines, path, f"basic_auth_users.{user}", "must be a bcrypt hash ($2y$...)")
        cfg.users[str(user)] = hashed.encode()
    try:
        cfg.ssl_context()
    except (ssl.SSLError, OSError) as exc:
        raise _field_error(lines, path, "tls_server_config", f"cannot load certificate or key: {exc}") from exc
    return cfg
