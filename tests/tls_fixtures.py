"""Certificates made with the openssl command for TLS tests: a self-signed server and a small CA."""

from __future__ import annotations

import subprocess
from pathlib import Path


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def self_signed(tmp: Path, name: str = "tls") -> tuple[Path, Path]:
    """A server certificate for 127.0.0.1 and its key."""
    cert, key = tmp / f"{name}.crt", tmp / f"{name}.key"
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert))
    return cert, key


def client_ca(tmp: Path) -> tuple[Path, Path]:
    """A CA that signs client certificates: (ca.crt, ca.key)."""
    cert, key = tmp / "ca.crt", tmp / "ca.key"
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=wattfleet test CA",
            "-keyout", str(key), "-out", str(cert))
    return cert, key


def client_cert(tmp: Path, ca: tuple[Path, Path], name: str, san: str) -> tuple[Path, Path]:
    """A client certificate signed by ``ca`` with one subjectAltName (e.g. ``DNS:prometheus``)."""
    key, csr, cert, ext = tmp / f"{name}.key", tmp / f"{name}.csr", tmp / f"{name}.crt", tmp / f"{name}.ext"
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(csr))
    ext.write_text(f"subjectAltName={san}\nextendedKeyUsage=clientAuth\n")
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]), "-CAcreateserial",
            "-days", "2", "-extfile", str(ext), "-out", str(cert))
    return cert, key
