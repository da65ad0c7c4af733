"""Tracking as a library: `multi.track_frames` (ByteTrack over per-frame detections, optional re-id appearance) and
`single.follow_box` (SiamFC from one box); trackers from checkpoints (load.py), MOTChallenge/OTB files and metrics.
"""
