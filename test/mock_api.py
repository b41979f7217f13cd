#!/usr/bin/env python3
"""Mock vendor usage APIs (UiPath, AvePoint) for the usage_fdw tests and demo.

The entry point of the test/mockapi/ package (see its __init__.py and
test/MOCK.md): `python3 test/mock_api.py --help`.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mockapi.server import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
