"""Tracking: a Kalman + ByteTrack multi-object tracker on detector boxes, MOTChallenge/OTB files and metrics.

The single-object SiamFC tracker will live here too, behind `SingleObjectTracker` (base.py).
"""
