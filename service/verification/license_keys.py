"""License keys: format, encryption at rest, and a keyed fingerprint for reuse detection."""

from __future__ import annotations

import hmac
import os
import re
from hashlib import sha256

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from service.verification.issues import AssetCheck, ScoreCard
from service.verification.thresholds import VerificationThresholds

LICENSE_KEY_CHARS = re.compile(r"[A-Za-z0-9_-]+")
MIN_SECRET_BYTES = 32
NONCE_BYTES = 12
# The first byte of every ciphertext names the scheme, so keys can be rotated later.
FORMAT_VERSION = b"\x01"
ENCRYPTION_INFO = b"rift.license-key.encryption.v1"
FINGERPRINT_INFO = b"rift.license-key.fingerprint.v1"


class LicenseKeyDecryptionError(Exception):
    """A stored license key could not be decrypted: wrong secret or tampered data."""


class LicenseKeyVault:
    """Encrypt license keys at rest and fingerprint them without revealing them.

    One secret yields two independent keys (HKDF with distinct labels): AES-256-GCM for
    storage, HMAC-SHA256 for the fingerprint. The fingerprint is keyed so that a leaked
    table of fingerprints cannot be brute-forced offline without the secret.
    """

    def __init__(self, secret: bytes) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"the license key secret needs at least {MIN_SECRET_BYTES} bytes")
        self._aead = AESGCM(_derive(secret, ENCRYPTION_INFO))
        self._fingerprint_key = _derive(secret, FINGERPRINT_INFO)

    def encrypt(self, key: str, *, associated_data: bytes = b"") -> bytes:
        """Encrypt a key; `associated_data` (e.g. the asset id) must match on decryption."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, key.encode("utf-8"), associated_data)
        return FORMAT_VERSION + nonce + sealed

    def decrypt(self, blob: bytes, *, associated_data: bytes = b"") -> str:
        """Decrypt a key sealed by `encrypt`."""
        if not blob.startswith(FORMAT_VERSION) or len(blob) < 1 + NONCE_BYTES:
            raise LicenseKeyDecryptionError("unknown license key ciphertext format")
        nonce, sealed = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, sealed, associated_data).decode("utf-8")
        except InvalidTag as exc:
            raise LicenseKeyDecryptionError("license key ciphertext failed authentication") from exc

    def fingerprint(self, key: str) -> str:
        """Return the hex HMAC-SHA256 of the normalized key, equal for equal keys."""
        return hmac.new(self._fingerprint_key, normalize_key(key).encode(), sha256).hexdigest()


def normalize_key(key: str) -> str:
    """Fold case and separators so cosmetic variants of one key fingerprint alike."""
    # Vendors print keys in groups and ignore case; a reseller changing either is the same key.
    return key.strip().upper().replace("-", "").replace("_", "")


def _derive(secret: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)


def check_license_key(
    key: str, *, reused_on_other_rift: bool, thresholds: VerificationThresholds
) -> AssetCheck:
    """Apply the license key rules; the caller looks up reuse by fingerprint."""
    card = ScoreCard(pass_score=thresholds.pass_score)
    length_ok = thresholds.license_key_min_chars <= len(key) <= thresholds.license_key_max_chars
    if not length_ok or LICENSE_KEY_CHARS.fullmatch(key) is None:
        card.fail_integrity(
            "license_key.format",
            f"A license key is {thresholds.license_key_min_chars}-"
            f"{thresholds.license_key_max_chars} characters of letters, digits, '-' and '_'.",
        )
    return apply_key_reuse(
        card.finish(), reused_on_other_rift=reused_on_other_rift, thresholds=thresholds
    )


def apply_key_reuse(
    check: AssetCheck, *, reused_on_other_rift: bool, thresholds: VerificationThresholds
) -> AssetCheck:
    """Add the finding of the caller's fingerprint lookup to a license key's check."""
    if not reused_on_other_rift:
        return check
    card = ScoreCard.resume(check)
    message = "The same license key was submitted on another rift."
    card.deduct("license_key.reused", message, thresholds.license_key_reuse_penalty)
    # A key sold twice is the fraud this check exists for; a human must see it.
    card.flag("license_key.reused", message)
    return card.finish()
