"""
Key loading and request signatures (pure: no sockets, threads or clock).

Binance's WebSocket API signs the request's params, every one but ``signature``, sorted by
key and joined as ``key=value&...`` (values not percent-encoded), as UTF-8:

- HMAC-SHA256 with the secret, lowercase hex;
- RSA PKCS#1 v1.5 with SHA-256, base64;
- Ed25519, base64.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from typing import Any, Optional, Union

from .exceptions import AuthenticationError

__all__ = [
    "ED25519",
    "HMAC",
    "RSA",
    "Ed25519Signer",
    "HmacSigner",
    "RsaSigner",
    "Signer",
    "canonical_payload",
    "load_signer",
    "param_text",
    "shown",
]

HMAC = "HMAC"
RSA = "RSA"
ED25519 = "Ed25519"


def param_text(value: Any) -> str:
    """The text a param value is signed as: booleans as ``true``/``false``, the rest ``str``."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def canonical_payload(params: Mapping[str, Any]) -> str:
    """Every param but ``signature``, sorted by key, as ``key=value`` joined with ``&``."""
    return "&".join(
        f"{key}={param_text(params[key])}" for key in sorted(params) if key != "signature"
    )


class HmacSigner:
    """HMAC-SHA256 over the payload, lowercase hex."""

    key_type = HMAC

    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()

    def sign(self, payload: str) -> str:
        return hmac.new(self._secret, payload.encode(), hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return "HmacSigner(<secret hidden>)"


class RsaSigner:
    """RSA PKCS#1 v1.5 with SHA-256, base64."""

    key_type = RSA

    def __init__(self, key: Any) -> None:
        self._key = key

    def sign(self, payload: str) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        raw = self._key.sign(payload.encode(), padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(raw).decode()

    def __repr__(self) -> str:
        return f"RsaSigner(<{self._key.key_size}-bit key hidden>)"


class Ed25519Signer:
    """Ed25519 over the payload, base64."""

    key_type = ED25519

    def __init__(self, key: Any) -> None:
        self._key = key

    def sign(self, payload: str) -> str:
        return base64.b64encode(self._key.sign(payload.encode())).decode()

    def __repr__(self) -> str:
        return "Ed25519Signer(<key hidden>)"


Signer = Union[HmacSigner, RsaSigner, Ed25519Signer]

_PEM_MARK = b"-----BEGIN"
#: Binance's HMAC secrets: 64 ASCII letters and digits.
HMAC_SECRET_RE = re.compile(r"[A-Za-z0-9]{64}")
# What makes a value look like key material, so that it is never shown in a message: control
# characters or line breaks, a run of 20 base64 characters without a slash, or 16 characters
# or more all of the base64 (or base64url) alphabet.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_BASE64_RUN = re.compile(r"[A-Za-z0-9+=]{20,}")
_BASE64_TEXT = re.compile(r"[A-Za-z0-9+/=]{16,}|[A-Za-z0-9_-]{16,}")


def shown(value: str) -> str:
    """
    ``value`` quoted for a message when it is plainly a path, else a hint of its length.

    A value that could be key material (see ``_BASE64_RUN`` and friends) is never shown: a
    key passed by mistake must not reach a log through an error message.
    """
    key_like = (
        _CONTROL.search(value) is not None
        or _BASE64_RUN.search(value) is not None
        or _BASE64_TEXT.fullmatch(value) is not None
        or len(value) > 4096
    )
    if key_like:
        return f"<{len(value)} characters, not shown: they may be a key>"
    return repr(value)


def load_signer(private_key_path: str, password: Optional[str] = None) -> Signer:
    """
    The signer for ``private_key_path``: a key file, PEM text, or an HMAC secret.

    The rule, in this order:

    1. text starting with ``-----BEGIN``: a PEM private key (Ed25519 or RSA);
    2. the path of an existing file: a PEM (or DER) private key file, Ed25519 or RSA, PKCS#8
       or traditional, encrypted when ``password`` is given;
    3. exactly 64 ASCII letters and digits (the form of Binance's secrets): an HMAC secret;
    4. anything else is refused, naming what was expected: a missing file (``"key.pem"``,
       ``"ed25519_key"``) is never taken as a secret.

    Raises:
        AuthenticationError: none of the above, or the file / PEM holds no usable Ed25519 or
            RSA key, or the password is wrong or missing. A message shows the value only when
            it is plainly a path (never text that could be a key or a secret).
    """
    if not isinstance(private_key_path, (str, os.PathLike)):
        raise AuthenticationError(
            f"private_key_path must be a path or an HMAC secret string, "
            f"not {type(private_key_path).__name__}"
        )
    text = os.fspath(private_key_path)
    if not isinstance(text, str):
        raise AuthenticationError("private_key_path must be a str path, not bytes")
    if text.lstrip().startswith("-----BEGIN"):
        return _signer_from_pem(text.encode(), "the PEM text given", password)
    if os.path.isfile(text):
        try:
            with open(text, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise AuthenticationError(
                f"cannot read key file {shown(text)}: {exc.strerror}"
            ) from None
        return _signer_from_pem(data, f"key file {shown(text)}", password)
    if HMAC_SECRET_RE.fullmatch(text):
        return HmacSigner(text)
    if not text.strip():
        raise AuthenticationError(
            "private_key_path is empty: give a key file, PEM text or an HMAC secret"
        )
    if os.path.exists(text):
        raise AuthenticationError(f"private_key_path {shown(text)} is not a file")
    raise AuthenticationError(
        f"private_key_path {shown(text)} is neither an existing key file, nor PEM text "
        "(-----BEGIN ...), nor an HMAC secret (64 ASCII letters and digits, as Binance issues "
        "them); if it is a key file, it does not exist"
    )


def _signer_from_pem(data: bytes, where: str, password: Optional[str]) -> Signer:
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
    from cryptography.hazmat.primitives.serialization import (
        load_der_private_key,
        load_pem_private_key,
    )

    secret = password.encode() if password is not None else None
    try:
        if _PEM_MARK in data:
            key: Any = load_pem_private_key(data, password=secret)
        else:
            key = load_der_private_key(data, password=secret)
    except TypeError as exc:
        # Raised for "password given but key not encrypted" and the reverse.
        raise AuthenticationError(f"{where}: {exc}") from None
    except (ValueError, Exception) as exc:
        if "password" in str(exc).lower() or "decrypt" in str(exc).lower():
            raise AuthenticationError(
                f"{where}: could not decrypt the key (wrong private_key_password?)"
            ) from None
        raise AuthenticationError(
            f"{where} holds no usable private key (expected a PEM Ed25519 or RSA key)"
        ) from None
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return Ed25519Signer(key)
    if isinstance(key, rsa.RSAPrivateKey):
        return RsaSigner(key)
    raise AuthenticationError(
        f"{where} holds a {type(key).__name__.lstrip('_')}, Binance takes Ed25519 or RSA keys"
    )
