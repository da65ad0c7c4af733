"""python -m detection.audit: the same command as `detpipe audit` (detection.cli.audit)."""
import sys

from detection.cli.audit import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m detection.audit"))
