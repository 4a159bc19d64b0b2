import sys

from jaxppo.cli.main import main

sys.exit(main())
