"""SecretBox: credentials at rest under KRSYNC_SECRET_KEY (SPEC section 5, "Secrets")."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from app.core.secrets import SecretBox, SecretKeyError

CREDENTIALS = {"client_id": "abc", "client_secret": "s3cr3t-value", "nested": {"n": [1, 2]}}


def test_roundtrip() -> None:
    box = SecretBox.from_keys(SecretBox.generate_key())

    token = box.encrypt_json(CREDENTIALS)

    assert "s3cr3t-value" not in token
    assert box.decrypt_json(token) == CREDENTIALS


def test_rotation_with_two_keys() -> None:
    old, new = SecretBox.generate_key(), SecretBox.generate_key()
    token = SecretBox.from_keys(old).encrypt_json(CREDENTIALS)

    rotated_box = SecretBox.from_keys(f"{new}, {old}")  # new key first, old still decrypts
    assert rotated_box.decrypt_json(token) == CREDENTIALS

    rotated = rotated_box.rotate(token)
    assert SecretBox.from_keys(new).decrypt_json(rotated) == CREDENTIALS
    with pytest.raises(SecretKeyError):
        SecretBox.from_keys(old).decrypt_json(rotated)


def test_new_tokens_use_the_first_key() -> None:
    first, second = SecretBox.generate_key(), SecretBox.generate_key()

    token = SecretBox.from_keys(f"{first},{second}").encrypt_json(CREDENTIALS)

    assert Fernet(first.encode()).decrypt(token.encode())


def test_wrong_key_says_the_key_is_no_longer_configured() -> None:
    token = SecretBox.from_keys(SecretBox.generate_key()).encrypt_json(CREDENTIALS)
    other = SecretBox.from_keys(SecretBox.generate_key())

    with pytest.raises(SecretKeyError) as info:
        other.decrypt_json(token)
    assert str(info.value) == ("credentials were encrypted with a key that is no longer configured")
    with pytest.raises(SecretKeyError, match="no longer configured"):
        other.rotate(token)


def test_garbage_token_is_a_key_error() -> None:
    box = SecretBox.from_keys(SecretBox.generate_key())

    with pytest.raises(SecretKeyError, match="no longer configured"):
        box.decrypt_json("not-a-token")


@pytest.mark.parametrize("keys", ["", "   ", ",", " , ,"])
def test_empty_key_string_is_refused(keys: str) -> None:
    with pytest.raises(SecretKeyError, match="KRSYNC_SECRET_KEY is empty"):
        SecretBox.from_keys(keys)


@pytest.mark.parametrize(
    "bad",
    ["hunter2-is-not-a-fernet-key", "c2hvcnQ=", "!!!!not*base64!!!!", "x" * 44],
)
def test_invalid_key_is_refused_without_echoing_it(bad: str) -> None:
    good = SecretBox.generate_key()

    with pytest.raises(SecretKeyError) as info:
        SecretBox.from_keys(f"{good},{bad}")

    message = str(info.value)
    assert "entry #2 of 2" in message
    assert bad not in message
    assert good not in message
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


def test_decrypted_payload_must_be_an_object() -> None:
    key = SecretBox.generate_key()
    token = Fernet(key.encode()).encrypt(b"[1, 2]").decode()

    with pytest.raises(SecretKeyError, match="not a JSON object"):
        SecretBox.from_keys(key).decrypt_json(token)
