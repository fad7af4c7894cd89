"""``python -m metrics_source.runtime.embedded -- CMD``."""

import sys

from metrics_source.runtime.embedded.command import main

sys.exit(main())
