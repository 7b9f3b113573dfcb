"""Signing: canonical payloads, the official and derived vectors, key loading."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from hypothesis import given
from hypothesis import strategies as st

from bfsync.exceptions import AuthenticationError
from bfsync.signing import (
    ED25519,
    HMAC,
    RSA,
    Ed25519Signer,
    HmacSigner,
    canonical_payload,
    load_signer,
)

# (A) official WS-API HMAC vectors
API_KEY_A = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET_A = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
PARAMS_A1 = {
    "symbol": "BTCUSDT",
    "side": "SELL",
    "type": "LIMIT",
    "timeInForce": "GTC",
    "quantity": "0.01000000",
    "price": "52000.00",
    "recvWindow": 100,
    "timestamp": 1645423376532,
    "apiKey": API_KEY_A,
}
PAYLOAD_A1 = (
    f"apiKey={API_KEY_A}&price=52000.00&quantity=0.01000000&recvWindow=100&side=SELL"
    "&symbol=BTCUSDT&timeInForce=GTC&timestamp=1645423376532&type=LIMIT"
)
SIG_A1 = "aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24"
PAYLOAD_A2 = (
    f"apiKey={API_KEY_A}&price=0.10000000&quantity=1.00000000&recvWindow=5000&side=BUY"
    "&symbol=１２３４５６&timeInForce=GTC&timestamp=1645423376532&type=LIMIT"
)
SIG_A2 = "b33892ae8e687c939f4468c6268ddd4c40ac1af18ad19a064864c47bae0752cd"
# (B) official session.logon example
PAYLOAD_B = f"apiKey={API_KEY_A}&timestamp=1649729878532"
SIG_B = "1cf54395b336b0a9727ef27d5d98987962bc47aca6e13fe978612d0adee066ed"
# (E) derived Ed25519 vectors: RFC 8032 test 1 key
ED_PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n"
    "-----END PRIVATE KEY-----\n"
)
ED_API_KEY = "4yNzx3yWC5bS6YTwEkSRaC0nRmSQIIStAUOh1b6kqaBrTLIhjCpI5lJH8q8R8WNO"
ED_PAYLOAD_ORDER = (
    f"apiKey={ED_API_KEY}&price=52000.00&quantity=0.01000000&recvWindow=100&side=SELL"
    "&symbol=BTCUSDT&timeInForce=GTC&timestamp=1645423376532&type=LIMIT"
)
ED_SIG_ORDER = (
    "Ws+5m/CMnpkko0uBFxGTZ2+fjqqBXsUjRiaz173fPhXTkhoDBYNZ6wcYNeWItdrGn1pvG7vkwx2fhmJdAZ3KDQ=="
)
ED_PAYLOAD_LOGON = f"apiKey={ED_API_KEY}&timestamp=1649729878532"
ED_SIG_LOGON = (
    "NBJq5sX1RkU7ta3XDctruMgnrhyBcouMvvPIxxQSCUbVWxhp3ai6W7a0Iip/3nOwmJxkVIv6n20cekYCOa5qAg=="
)
# Derived HMAC, sorted payload with the futures example secret (C)
SECRET_C = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9"
API_KEY_C = "dbefbc809e3e83c283a984c3a1459732ea7db1360ca80c5c2c8867408d28cc83"
SIG_C_SORTED = "5b8fe2b962b8e1b2b82fb40e548d56147c2a8f835b5f1393ae4b4b90c38b527f"


def test_canonical_payload_sorts_and_skips_signature() -> None:
    """The payload is every param but signature, sorted by key, joined with &."""
    params = {**PARAMS_A1, "signature": "x"}

    assert PAYLOAD_A1 == canonical_payload(params)


def test_canonical_payload_formats_booleans() -> None:
    """Booleans are signed as true/false, as they are sent."""
    assert "a=true&b=false&c=1" == canonical_payload({"c": 1, "b": False, "a": True})


@pytest.mark.parametrize(
    ("payload", "signature"),
    [(PAYLOAD_A1, SIG_A1), (PAYLOAD_A2, SIG_A2), (PAYLOAD_B, SIG_B)],
)
def test_hmac_official_vectors(payload: str, signature: str) -> None:
    """HMAC-SHA256 hex reproduces Binance's published vectors (A) and (B)."""
    assert signature == HmacSigner(SECRET_A).sign(payload)


def test_hmac_derived_sorted_vector() -> None:
    """The derived vector with the futures example secret (C), sorted WS-style."""
    params = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "quantity": "1",
        "price": "9000",
        "timeInForce": "GTC",
        "recvWindow": 5000,
        "timestamp": 1591702613943,
        "apiKey": API_KEY_C,
    }

    assert SIG_C_SORTED == HmacSigner(SECRET_C).sign(canonical_payload(params))


@pytest.mark.parametrize(
    ("payload", "signature"),
    [(ED_PAYLOAD_ORDER, ED_SIG_ORDER), (ED_PAYLOAD_LOGON, ED_SIG_LOGON)],
)
def test_ed25519_derived_vectors(payload: str, signature: str, tmp_path: Path) -> None:
    """Ed25519 base64 over the payload reproduces the derived vectors (E), from a key file."""
    path = tmp_path / "ed25519.pem"
    path.write_text(ED_PEM)
    signer = load_signer(str(path))

    assert ED25519 == signer.key_type
    assert signature == signer.sign(payload)


def test_ed25519_from_pem_text() -> None:
    """PEM text itself is accepted in place of a path."""
    assert ED_SIG_LOGON == load_signer(ED_PEM).sign(ED_PAYLOAD_LOGON)


def _rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.mark.parametrize(
    "fmt", [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL]
)
def test_rsa_round_trip(fmt: serialization.PrivateFormat, tmp_path: Path) -> None:
    """RSA PKCS#1 v1.5 SHA-256 base64 verifies with the public key (PKCS#8 and traditional)."""
    key = _rsa_key()
    path = tmp_path / "rsa.pem"
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())
    )
    signer = load_signer(str(path))

    signature = signer.sign(PAYLOAD_A1)

    assert RSA == signer.key_type
    key.public_key().verify(
        base64.b64decode(signature), PAYLOAD_A1.encode(), padding.PKCS1v15(), hashes.SHA256()
    )


def test_encrypted_key_with_password(tmp_path: Path) -> None:
    """An encrypted PEM loads with the right password and signs like the plain key."""
    key = ed25519.Ed25519PrivateKey.generate()
    path = tmp_path / "enc.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pa55word"),
        )
    )

    signer = load_signer(str(path), "pa55word")

    key.public_key().verify(base64.b64decode(signer.sign("x=1")), b"x=1")


@pytest.mark.parametrize("password", [None, "wrong"])
def test_encrypted_key_without_or_with_wrong_password(password: str | None, tmp_path: Path) -> None:
    """A missing or wrong password is an AuthenticationError that does not echo it."""
    key = ed25519.Ed25519PrivateKey.generate()
    path = tmp_path / "enc.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pa55word"),
        )
    )

    with pytest.raises(AuthenticationError) as info:
        load_signer(str(path), password)

    assert "pa55word" not in str(info.value)
    assert "wrong" not in str(info.value).replace("wrong private_key_password", "")


def test_file_without_key_is_an_error_not_hmac(tmp_path: Path) -> None:
    """A path that exists but holds no key is refused, never used as an HMAC secret."""
    path = tmp_path / "notakey.pem"
    path.write_text("hello")

    with pytest.raises(AuthenticationError, match="no usable private key"):
        load_signer(str(path))


def test_missing_key_file_is_an_error(tmp_path: Path) -> None:
    """A path that looks like a key file but does not exist is refused."""
    with pytest.raises(AuthenticationError, match="does not exist"):
        load_signer(str(tmp_path / "missing.pem"))


def test_unsupported_key_type(tmp_path: Path) -> None:
    """An EC key is refused: Binance takes Ed25519 or RSA."""
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "ec.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )

    with pytest.raises(AuthenticationError, match="Ed25519 or RSA"):
        load_signer(str(path))


def test_plain_string_is_an_hmac_secret() -> None:
    """A string that is not a file is the HMAC secret, as in the async library."""
    signer = load_signer(SECRET_A)

    assert HMAC == signer.key_type
    assert SIG_A1 == signer.sign(PAYLOAD_A1)


@pytest.mark.parametrize("bad", ["", "   "])
def test_empty_secret_is_refused(bad: str) -> None:
    """An empty secret is refused."""
    with pytest.raises(AuthenticationError, match="empty"):
        load_signer(bad)


def test_reprs_hide_secrets() -> None:
    """No signer's repr shows key material."""
    assert SECRET_A not in repr(HmacSigner(SECRET_A))
    assert "hidden" in repr(Ed25519Signer(ed25519.Ed25519PrivateKey.generate()))


# ---- telling a secret from a path; no key material in messages -------------------------------

RAW_ED25519_B64 = "MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g"


@pytest.mark.parametrize("missing", ["ed25519_key", "key.txt", "keys/ed25519.pem", "my key"])
def test_missing_file_is_never_an_hmac_secret(missing: str, tmp_path: Path) -> None:
    """A name that is not a file nor 64 letters/digits is refused, saying what was expected."""
    with pytest.raises(AuthenticationError) as info:
        load_signer(str(tmp_path / "nowhere" / missing) if "/" in missing else missing)

    message = str(info.value)
    assert "64 ASCII letters and digits" in message and "PEM" in message


@pytest.mark.parametrize(
    "key",
    [
        RAW_ED25519_B64,  # a raw base64 key with a slash
        RAW_ED25519_B64 + ".pem",
        "MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v\nVpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n",  # PEM body
        SECRET_A[:-1],  # a secret with a character lost
        SECRET_A + "x",
        "-" + SECRET_A[:40],
        "/" * 22 + "w==",
    ],
)
def test_key_material_is_never_echoed(key: str) -> None:
    """A refused value that could be a key is not shown; its length is."""
    with pytest.raises(AuthenticationError) as info:
        load_signer(key)

    message = str(info.value)
    assert key.strip() not in message and key[:12] not in message
    assert f"<{len(key)} characters" in message


@given(st.binary(min_size=12, max_size=256))
def test_base64_text_is_never_echoed(raw: bytes) -> None:
    """No base64 text of 16 characters or more appears in the message (property)."""
    key = base64.b64encode(raw).decode()
    with pytest.raises(AuthenticationError) as info:
        load_signer(key if len(key) != 64 or not key.isalnum() else key + "=")

    assert key[:16] not in str(info.value)


@pytest.mark.parametrize(
    "path",
    ["/no/such/dir/binance_ed25519.pem", "C:\\Users\\me\\keys\\api-key.pem", "./key.txt"],
)
def test_a_plain_path_is_shown(path: str) -> None:
    """A value that is plainly a path is quoted in the message, to help find the mistake."""
    with pytest.raises(AuthenticationError) as info:
        load_signer(path)

    assert repr(path) in str(info.value)


@pytest.mark.parametrize(
    "secret", [SECRET_A, "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9"]
)
def test_64_letters_and_digits_are_an_hmac_secret(secret: str) -> None:
    """Binance's secret form (the official vectors A and C) is taken as the HMAC secret."""
    assert HMAC == load_signer(secret).key_type


def test_a_directory_is_refused_without_fallback(tmp_path: Path) -> None:
    """An existing directory is neither a key file nor a secret."""
    with pytest.raises(AuthenticationError, match="is not a file"):
        load_signer(str(tmp_path))
