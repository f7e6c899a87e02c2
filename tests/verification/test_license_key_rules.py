"""License keys: format, encryption at rest, keyed fingerprints, reuse."""

from __future__ import annotations

import pytest
from proof_fixtures import codes

from service.verification import (
    LicenseKeyDecryptionError,
    LicenseKeyVault,
    VerificationThresholds,
    check_license_key,
)

SECRET = b"k" * 32
OTHER_SECRET = b"j" * 32
DEFAULTS = VerificationThresholds()
KEY = "ABCDE-12345-FGHIJ-67890_x"


@pytest.mark.parametrize("key", ["ABCDE", "a" * 500, "AB_CD-12"])
def test_well_formed_keys_pass(key: str) -> None:
    check = check_license_key(key, reused_on_other_rift=False, thresholds=DEFAULTS)
    assert check.score == 100
    assert check.passed


@pytest.mark.parametrize("key", ["ABCD", "a" * 501, "ABC DE", "ABCDE!", "ключ-12345", ""])
def test_malformed_keys_fail(key: str) -> None:
    check = check_license_key(key, reused_on_other_rift=False, thresholds=DEFAULTS)
    assert codes(check) == {"license_key.format"}
    assert not check.passed


def test_a_key_reused_on_another_rift_loses_40_and_is_an_issue() -> None:
    check = check_license_key(KEY, reused_on_other_rift=True, thresholds=DEFAULTS)
    assert check.score == 60
    assert codes(check) == {"license_key.reused"}


def test_a_key_round_trips_through_encryption_and_is_not_stored_in_clear() -> None:
    vault = LicenseKeyVault(SECRET)
    sealed = vault.encrypt(KEY)
    assert KEY.encode() not in sealed
    assert vault.decrypt(sealed) == KEY
    assert vault.encrypt(KEY) != sealed  # a fresh nonce every time


def test_a_tampered_ciphertext_is_rejected() -> None:
    vault = LicenseKeyVault(SECRET)
    sealed = bytearray(vault.encrypt(KEY))
    sealed[-1] ^= 0x01
    with pytest.raises(LicenseKeyDecryptionError):
        vault.decrypt(bytes(sealed))


def test_the_wrong_secret_cannot_decrypt() -> None:
    with pytest.raises(LicenseKeyDecryptionError):
        LicenseKeyVault(OTHER_SECRET).decrypt(LicenseKeyVault(SECRET).encrypt(KEY))


def test_associated_data_binds_a_ciphertext_to_its_asset() -> None:
    vault = LicenseKeyVault(SECRET)
    sealed = vault.encrypt(KEY, associated_data=b"asset-1")
    assert vault.decrypt(sealed, associated_data=b"asset-1") == KEY
    with pytest.raises(LicenseKeyDecryptionError):
        vault.decrypt(sealed, associated_data=b"asset-2")


def test_fingerprints_match_for_the_same_key_and_differ_otherwise() -> None:
    vault = LicenseKeyVault(SECRET)
    assert vault.fingerprint(KEY) == LicenseKeyVault(SECRET).fingerprint(KEY)
    assert vault.fingerprint(KEY) != vault.fingerprint("ZZZZZ-12345")
    assert len(vault.fingerprint(KEY)) == 64
    assert KEY not in vault.fingerprint(KEY)


def test_cosmetic_variants_of_a_key_share_a_fingerprint() -> None:
    vault = LicenseKeyVault(SECRET)
    assert vault.fingerprint("abcde-12345") == vault.fingerprint("ABCDE12345")


def test_fingerprints_are_keyed_by_the_secret() -> None:
    assert LicenseKeyVault(SECRET).fingerprint(KEY) != LicenseKeyVault(OTHER_SECRET).fingerprint(
        KEY
    )


def test_fingerprint_and_encryption_keys_are_independent() -> None:
    vault = LicenseKeyVault(SECRET)
    # The fingerprint is not simply an HMAC under the raw secret.
    import hashlib
    import hmac

    assert vault.fingerprint(KEY) != hmac.new(SECRET, KEY.encode(), hashlib.sha256).hexdigest()


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        LicenseKeyVault(b"short")
