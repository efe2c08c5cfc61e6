"""The exporter-toolkit web config format, accepted whole and validated at load (file, line, field)."""

from __future__ import annotations

import ssl
import time
import urllib.request
from pathlib import Path

import bcrypt
import pytest
from tls_fixtures import client_ca, client_cert, self_signed

from wattfleet.core.exposition import Snapshot
from wattfleet.core.http import MetricsServer
from wattfleet.core.webconfig import WebConfigError, load_web_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "web.yml"
    path.write_text(text)
    return path


def test_the_whole_exporter_toolkit_format_is_accepted(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    ca, _ = client_ca(tmp_path)
    pem = cert.read_text().replace("\n", "\n    ")
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()
    cfg = load_web_config(write(tmp_path, f"""\
tls_server_config:
  cert: |
    {pem.rstrip()}
  key_file: {key.name}
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: {ca.name}
  client_allowed_sans: [prometheus.monitoring.svc]
  min_version: TLS12
  max_version: TLS13
  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, TLS_AES_128_GCM_SHA256]
  prefer_server_cipher_suites: false
  curve_preferences: [X25519, CurveP256]
http_server_config:
  http2: true
  headers:
    Strict-Transport-Security: max-age=31536000
    X-Frame-Options: sameorigin
basic_auth_users:
  prometheus: '{hashed}'
rate_limit:
  interval: 100ms
  burst: 20
"""))
    assert cfg.tls and cfg.max_version == "TLS13" and cfg.client_allowed_sans == ("prometheus.monitoring.svc",)
    assert cfg.headers["X-Frame-Options"] == "sameorigin" and cfg.rate_limit_interval_seconds == pytest.approx(0.1)
    assert not list(Path("/tmp").glob("wattfleet-web-*.pem"))  # the inline PEM left no file behind
    assert isinstance(cfg.ssl_context(), ssl.SSLContext)


@pytest.mark.parametrize("body, message", [
    ("tls_server_config:\n  cert_file: c.crt\n  key_file: c.key\n  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n",
     "line 4: tls_server_config.cipher_suites: 'TLS_RSA_WITH_RC4_128_SHA' is not a supported"),
    ("tls_server_config:\n  cert_file: c.crt\n  key_file: c.key\n  curve_preferences: [P999]\n",
     "line 4: tls_server_config.curve_preferences: 'P999'"),
    ("tls_server_config:\n  cert_file: c.crt\n  key_file: c.key\n  min_version: TLS13\n  max_version: TLS12\n",
     "line 5: tls_server_config.max_version: TLS12 is below min_version TLS13"),
    ("tls_server_config:\n  cert_file: c.crt\n  key_file: c.key\n  client_auth_type: RequireAnyClientCert\n",
     "tls_server_config.client_ca_file: required for RequireAnyClientCert"),
    ("tls_server_config:\n  cert_file: c.crt\n  key_file: c.key\n  client_allowed_sans: [a]\n",
     "line 4: tls_server_config.client_allowed_sans: needs client_auth_type"),
    ("http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
     "line 3: http_server_config.headers.X-Frame-Options: 'allow' is not one of"),
    ("http_server_config:\n  headers:\n    Server: x\n", "line 3: http_server_config.headers.Server: not one of"),
    ("rate_limit:\n  interval: soon\n  burst: 1\n", "line 2: rate_limit.interval"),
    ("basic_auth_users:\n  bob: '$2b$10$tooshort'\n", "line 2: basic_auth_users.bob: must be a bcrypt hash"),
])
def test_every_problem_names_line_and_field(tmp_path: Path, body: str, message: str) -> None:
    self_signed(tmp_path, "c")
    with pytest.raises(WebConfigError) as err:
        load_web_config(write(tmp_path, body))
    assert str(err.value).startswith(str(tmp_path / "web.yml")) and message in str(err.value), str(err.value)


def test_an_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True))
    started = time.monotonic()
    with pytest.raises(WebConfigError, match="line 1: YAML anchors and aliases are not accepted"):
        load_web_config(write(tmp_path, bomb))
    assert time.monotonic() - started < 1.0


def _https_get(url: str, ca: Path, cert: tuple[Path, Path]) -> bytes:
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    return urllib.request.urlopen(url, timeout=5, context=ctx).read()


def test_client_allowed_sans_admit_only_named_clients(tmp_path: Path) -> None:
    server_cert, server_key = self_signed(tmp_path)
    ca = client_ca(tmp_path)
    good = client_cert(tmp_path, ca, "good", "DNS:prometheus.monitoring.svc")
    bad = client_cert(tmp_path, ca, "bad", "DNS:someone-else")
    cfg = load_web_config(write(tmp_path, f"""\
tls_server_config:
  cert_file: {server_cert.name}
  key_file: {server_key.name}
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: {ca[0].name}
  client_allowed_sans: [prometheus.monitoring.svc]
"""))
    s = MetricsServer("127.0.0.1:0", lambda: Snapshot(b"x 1\n", time.time()), cfg)
    s.start()
    try:
        assert _https_get(s.url, server_cert, good) == b"x 1\n"
        with pytest.raises(OSError):
            _https_get(s.url, server_cert, bad)
    finally:
        s.stop()
