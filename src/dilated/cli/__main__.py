"""``python -m dilated.cli``: the ``dilated`` command."""

import sys

from dilated.cli import main

sys.exit(main())
