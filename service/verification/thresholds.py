"""Every number the verification rules use, with the defaults of DESIGN section 3."""

from __future__ import annotations

from dataclasses import dataclass, fields

MIB = 1024 * 1024


@dataclass(frozen=True)
class VerificationThresholds:
    """Configure the verification rules; settings build one, tests override fields."""

    # Asset and submission verdicts.
    pass_score: int = 60
    auto_approve_min_score: int = 90
    auto_approve_max_risk: int = 30
    review_risk_above: int = 50
    review_subtotal_above_minor: int = 1_000_000

    # Files.
    min_file_bytes: int = 100
    max_file_bytes: int = 50 * MIB
    # clamd's MaxFileSize (deploy/clamav/clamd.conf.in; a test keeps the two equal): an
    # archive member larger than this is skipped by the scanner without a word.
    scanner_max_file_bytes: int = 60 * MIB
    # One file's whole inspection, in its own process (service/verification/budget.py).
    # Ten files at 10 s stay inside the verification job's 120 s time limit; real proofs
    # take about a second.
    file_inspection_wall_clock_s: float = 10.0
    file_inspection_memory_bytes: int = 512 * MIB

    # PDF.
    pdf_min_text_chars: int = 100
    pdf_no_text_penalty: int = 50
    pdf_single_page_min_text_chars: int = 500
    pdf_thin_single_page_penalty: int = 30
    pdf_fresh_window_s: int = 600
    pdf_fresh_min_text_chars: int = 1000
    pdf_fresh_penalty: int = 20
    pdf_image_only_max_text_chars: int = 50
    pdf_image_only_penalty: int = 15
    pdf_max_pages_for_text: int = 50

    # Images.
    min_image_width_px: int = 100
    min_image_height_px: int = 100
    max_image_pixels: int = 50_000_000
    # Past this many decoded bytes (width x height x bands) an image is not decoded whole:
    # JPEGs decode scaled down, PNGs strip by strip; other formats are flagged unchecked.
    image_full_decode_max_bytes: int = 64 * MIB
    exif_stripped_penalty: int = 5
    phash_bands: int = 4
    near_duplicate_max_distance: int = 7
    near_duplicate_penalty: int = 10

    # Zip archives (also applied to OOXML documents, which are zips).
    zip_max_members: int = 1000
    zip_max_total_uncompressed_bytes: int = 1024 * MIB
    zip_max_compression_ratio: int = 100
    zip_member_prefix_bytes: int = 512

    # License keys.
    license_key_min_chars: int = 5
    license_key_max_chars: int = 500
    license_key_reuse_penalty: int = 40

    # Tracking numbers.
    tracking_min_chars: int = 8
    tracking_max_chars: int = 40
    tracking_length_penalty: int = 20
    tracking_charset_penalty: int = 15
    tracking_unknown_carrier_penalty: int = 5

    # Free text.
    text_min_chars: int = 50
    text_too_short_penalty: int = 50

    # URLs.
    url_max_chars: int = 2048
    url_reachability_check: bool = False
    url_timeout_s: float = 5.0
    url_max_bytes: int = 64 * 1024
    url_max_redirects: int = 5

    def __post_init__(self) -> None:
        """Reject settings under which the rules would contradict themselves."""
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, bool) and value < 0:
                raise ValueError(f"{f.name} must not be negative, got {value}")
        if not 0 <= self.pass_score <= self.auto_approve_min_score <= 100:
            raise ValueError("need 0 <= pass_score <= auto_approve_min_score <= 100")
        if self.min_file_bytes > self.max_file_bytes:
            raise ValueError("min_file_bytes exceeds max_file_bytes")
        if self.license_key_min_chars > self.license_key_max_chars:
            raise ValueError("license_key_min_chars exceeds license_key_max_chars")
        if self.tracking_min_chars > self.tracking_max_chars:
            raise ValueError("tracking_min_chars exceeds tracking_max_chars")
        if not 1 <= self.phash_bands <= 64:
            raise ValueError("phash_bands must be within 1..64")
        # The band index probes every value within d // bands bits of each band; past a
        # radius of 2 the probe lists grow too long for an index lookup to pay off.
        # The band index only finds pairs that share a band, which pigeonhole guarantees
        # for distances below the band count; a wider threshold would silently miss pairs.
        if self.near_duplicate_max_distance // self.phash_bands > 2:
            raise ValueError("near_duplicate_max_distance needs more phash_bands (radius > 2)")
