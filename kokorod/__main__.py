import sys

from kokorod.cli import main

sys.exit(main())
