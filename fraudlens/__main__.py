import sys

from fraudlens.cli import main

sys.exit(main())
