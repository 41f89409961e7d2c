import sys

from codex_core.cli import main

sys.exit(main())
