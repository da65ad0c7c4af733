"""python -m detection.weights list|fetch|import: the same command as `detpipe weights` (detection.cli.weights)."""
import sys

from detection.cli.weights import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m detection.weights"))
