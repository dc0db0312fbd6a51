import sys

from cached.cli import main

sys.exit(main())
