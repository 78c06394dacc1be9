"""`python -m stackcoder` is the `stackcoder` command."""

import sys

from stackcoder.cli import main

sys.exit(main())
