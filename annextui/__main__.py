import sys

from annextui.cli import main

sys.exit(main())
