"""`python -m detpipe ...`: the same as the `detpipe` console script."""
import sys

from detpipe.main import main

sys.exit(main())
