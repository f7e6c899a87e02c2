"""What a seller can do about each finding, in plain words, keyed by the rule's code."""

from __future__ import annotations

ADVICE_BY_CODE: dict[str, str] = {
    "file.missing": "The file was lost before it could be checked: upload it again.",
    "file.quarantined": "Upload a clean copy of this file; the infected one is never delivered.",
    "file.reused": (
        "This exact file was already sent as proof on another deal: upload proof made for "
        "this deal."
    ),
    "file.size_mismatch": "The upload was cut short: upload the file again.",
    "file.too_large": "Upload a smaller file (compress it, or split it into parts).",
    "file.too_small": "The file is almost empty: upload the complete document.",
    "file.type_mismatch": (
        "The file's name or type does not match its content: upload it with its real type, "
        "without renaming it."
    ),
    "file.type_not_allowed": (
        "Upload a PDF, an image (JPEG, PNG, GIF, WebP), a zip, text or an Office file."
    ),
    "image.decompression_bomb": "Upload the photo at a normal size (under about 90 megapixels).",
    "image.exif_stripped": (
        "The photo carries no camera details: upload the original photo as the camera or "
        "phone saved it, if you can."
    ),
    "image.near_duplicate": (
        "A very similar image was sent on another deal: upload a photo taken for this one."
    ),
    "image.too_small": "Upload a larger photo where the item can be seen clearly.",
    "image.unreadable": "The image could not be opened: export it again as JPEG or PNG.",
    "license_key.format": (
        "A license key is 5-500 letters, digits, dashes or underscores: paste it exactly."
    ),
    "license_key.reused": "This key was already used on another deal: send the key for this one.",
    "pdf.encrypted": "Upload the PDF without a password.",
    "pdf.freshly_created": (
        "The PDF was made minutes before upload with little text: upload the original "
        "invoice or receipt."
    ),
    "pdf.image_only": (
        "This PDF is pictures with almost no text: upload the invoice as a text PDF, not a scan."
    ),
    "pdf.javascript": "Upload a plain PDF without scripts or automatic actions.",
    "pdf.no_text": ("This PDF has no readable text: upload the invoice as a text PDF, not a scan."),
    "pdf.thin_single_page": (
        "A single page with little text is weak proof: add the full invoice or a delivery "
        "confirmation."
    ),
    "pdf.unreadable": "The PDF could not be opened: export it again from the original program.",
    "scan.error": (
        "The virus scanner could not check this file; a person will look at it. You do not "
        "need to do anything yet."
    ),
    "scan.infected": (
        "The virus scanner flagged this file and it was quarantined: upload a clean copy."
    ),
    "text.injection": "Write the summary as plain text, without HTML or script.",
    "text.too_short": "Describe the delivery in a few sentences: what, when and how.",
    "tracking.characters": "A tracking number has only letters, digits, dashes and spaces.",
    "tracking.length": "A tracking number is 8-40 characters: copy it from the carrier's receipt.",
    "tracking.unknown_carrier": (
        "The number matches no UPS, FedEx, USPS or DHL pattern: check it against the receipt."
    ),
    "url.credentials": "Send the link without a user name or password in it.",
    "url.forbidden_address": "Send a public link; internal addresses cannot be checked.",
    "url.invalid": "Send a complete link starting with https://.",
    "url.scheme": "Send an http:// or https:// link.",
    "url.shortener": "Send the full link, not a shortened one.",
    "url.too_long": "Send a shorter link (the page itself, without tracking parameters).",
    "url.unreachable": "The link did not answer: check that it is public and works.",
    "zip.compression_ratio": "Upload the files themselves or a normally compressed zip.",
    "zip.corrupt_member": "The zip is damaged: create it again and upload it.",
    "zip.encrypted": "Upload the zip without a password.",
    "zip.executable": "Programs are not accepted as proof: upload documents or images.",
    "zip.nested_archive": "Put the files directly in one zip, not a zip inside a zip.",
    "zip.too_large": "Upload fewer or smaller files in the zip.",
    "zip.too_many_members": "Upload fewer files in the zip.",
    "zip.unreadable": "The zip could not be opened: create it again and upload it.",
    "zip.unsafe_path": "Create the zip again from a normal folder.",
    "zip.unsupported_compression": "Create the zip again with standard (deflate) compression.",
}

REVIEW_REASON_WORDS: dict[str, str] = {
    "asset.failed": "some of the proof did not pass the checks",
    "asset.issues": "the checks raised questions a person should answer",
    "scan.infected": "the virus scanner flagged a file",
    "scan.error": "a file could not be scanned for viruses",
    "rift.manual_review": "this deal is marked for a person to check",
    "rift.subtotal": "deals of this amount are always checked by a person",
    "rift.risk": "this deal's risk score calls for a person to check",
    "submission.empty": "the submission held nothing to check",
}

GENERIC_ADVICE = "Check this part of the proof and send it again if it is wrong."


def advice_for(code: str) -> str:
    """Say what the seller can do about the finding with this code."""
    return ADVICE_BY_CODE.get(code, GENERIC_ADVICE)


def review_reason_words(code: str, message: str) -> str:
    """Say in plain words why a proof went to a person."""
    return REVIEW_REASON_WORDS.get(code, message)
