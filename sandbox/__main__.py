"""`python -m sandbox ...` (the same as the `sandbox` command): see `sandbox.cli`."""

import sys

from sandbox.cli import main

sys.exit(main())
