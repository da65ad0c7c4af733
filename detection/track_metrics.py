"""`python -m detection.track_metrics`: `detpipe track-metrics` (detection.cli.track_metrics) run as a module.

An entry point only: the arguments, the work and the exit status are detection.cli.track_metrics's.
"""
import sys

if __name__ == "__main__":
    from detection.cli.track_metrics import main

    sys.exit(main(prog="python -m detection.track_metrics"))
