"""`python -m service.cli`, the same as the `rift` console script."""

import sys

from service.cli import main

sys.exit(main())
