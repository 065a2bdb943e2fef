from annextui.cli import main
import sys
sys.exit(main())
