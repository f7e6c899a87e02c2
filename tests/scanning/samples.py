"""Test inputs for the scanner and the signature names they must produce."""

from pathlib import Path

# The EICAR test string, assembled at run time so this source file is not itself flagged by
# a developer's virus scanner.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
# clamd appends ".UNOFFICIAL" to signatures that are not from the official databases.
EICAR_SIGNATURE = "Rift.Test.EICAR.UNOFFICIAL"
CLAMAV_TESTFILE_SIGNATURE = "Rift.Test.ClamAVTestFile.UNOFFICIAL"
CLAMAV_TESTFILES_DIR = Path("/usr/share/clamav-testfiles")
# Small enough that the over-limit test sends only a few megabytes.
SMALL_STREAM_MAX_BYTES = 1024 * 1024
