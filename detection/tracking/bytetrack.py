"""ByteTrack (Zhang et al., ECCV 2022): tracks follow high-score detections first, then low-score ones.

Kalman-predicted boxes are matched by IoU (Hungarian); an optional appearance term uses embedding distances.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from datasets.core.errors import UserError
from detection.registry import TRACKERS
from detection.tracking.association import associate, cosine_distance
from detection.tracking.base import Track
from detection.tracking.kalman import KalmanBoxFilter, cxcywh_to_xyxy

TENTATIVE, TRACKED, LOST = "tentative", "tracked", "lost"


def option(default, text: str):
    """A ByteTrackOptions field whose help text the command line and the HTTP API show (field metadata)."""
    return field(default=default, metadata={"help": text})


@dataclass
class ByteTrackOptions:
    """Thresholds and lifetimes; the defaults are ByteTrack's (its match_thresh 0.8 is 1 - match_iou).

    The one source of the tracker's settings: `detpipe track` makes a flag of each field (--high-threshold ...)
    and POST /v1/track a query parameter of each it takes, with these defaults and help texts.
    """

    high_threshold: float = option(0.5, "first-association score: detections scoring this or more are matched "
                                        "first and may start tracks")
    low_threshold: float = option(0.1, "second-association score: detections from this up to the high threshold "
                                       "(occluded, blurred) only continue tracks; lower ones are dropped")
    new_track_threshold: float = option(0.6, "score a leftover high detection needs to start a track")
    match_iou: float = option(0.2, "least IoU of a first-association pair (track prediction, detection)")
    low_match_iou: float = option(0.5, "least IoU of a second-association pair")
    tentative_match_iou: float = option(0.3, "least IoU to continue a track not yet confirmed")
    min_hits: int = option(2, "detections a new track needs to be confirmed (on the first frame: at once)")
    max_age: int = option(30, "frames a lost track is kept to be found again")
    class_aware: bool = option(False, "match detections only to tracks of their class")
    appearance_weight: float = option(0.5, "with re-id embeddings: cost = (1 - w) (1 - IoU) + w cosine distance")
    max_appearance_distance: float = option(0.5, "with re-id embeddings: pairs farther apart never match")
    embedding_momentum: float = option(0.9, "with re-id embeddings: a track's embedding keeps this much of the "
                                            "old, the rest of the new")

    def check(self) -> None:
        """UserError naming the setting that is out of range."""
        if not 0 <= self.low_threshold <= self.high_threshold <= 1:
            raise UserError(f"need 0 <= low_threshold ({self.low_threshold}) <= high_threshold "
                            f"({self.high_threshold}) <= 1")
        for name in ("match_iou", "low_match_iou", "tentative_match_iou", "new_track_threshold",
                     "appearance_weight", "embedding_momentum"):
            if not 0 <= getattr(self, name) <= 1:
                raise UserError(f"{name} must be in 0..1, got {getattr(self, name)}")
        if self.min_hits < 1 or self.max_age < 0:
            raise UserError(f"need min_hits >= 1 and max_age >= 0, got {self.min_hits} and {self.max_age}")


@dataclass
class TrackState:
    """A track inside the tracker: Kalman state, status, counts, last score and class, embedding."""

    mean: np.ndarray
    covariance: np.ndarray
    score: float
    category_id: int
    status: str = TENTATIVE
    track_id: int = 0  # 0 until confirmed
    hits: int = 1
    missed: int = 0  # frames since the last matched detection
    embedding: np.ndarray | None = field(default=None, repr=False)

    @property
    def box(self) -> np.ndarray:
        return cxcywh_to_xyxy(self.mean)


class ByteTracker:
    """ByteTrack over per-frame detections; call `update` once per frame, in order."""

    def __init__(self, options: ByteTrackOptions | None = None, kalman: KalmanBoxFilter | None = None) -> None:
        self.options = options or ByteTrackOptions()
        self.options.check()
        self.kalman = kalman or KalmanBoxFilter()
        self.reset()

    def reset(self) -> None:
        """Forget every track; ids start again from 1."""
        self.tracks: list[TrackState] = []
        self.frame = 0
        self.next_id = 1

    def update(self, boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray | None = None,
               embeddings: np.ndarray | None = None) -> list[Track]:
        """One frame's detections (boxes [N, 4] xyxy, scores [N], classes [N], embeddings [N, D] or None)
        -> the confirmed tracks matched in this frame, by id."""
        boxes, scores, classes, embeddings = check_inputs(boxes, scores, classes, embeddings)
        self.frame += 1
        self._predict()
        high = np.flatnonzero(scores >= self.options.high_threshold)
        low = np.flatnonzero((scores >= self.options.low_threshold) & (scores < self.options.high_threshold))
        detections = (boxes, scores, classes, embeddings)
        pool = [t for t in self.tracks if t.status != TENTATIVE]
        left_tracks, left_high = self._match(pool, high, detections, self.options.match_iou, True)
        recent = [t for t in left_tracks if t.status == TRACKED]
        unmatched, _ = self._match(recent, low, detections, self.options.low_match_iou, False)
        for track in unmatched:
            track.status = LOST
        tentative = [t for t in self.tracks if t.status == TENTATIVE]
        dropped, left_high = self._match(tentative, left_high, detections, self.options.tentative_match_iou, True)
        self._start(left_high, detections)
        self._forget(dropped)
        return [Track(t.track_id, t.box, t.score, t.category_id) for t in sorted(self.tracks, key=lambda t: t.track_id)
                if t.status == TRACKED and t.missed == 0]

    def _predict(self) -> None:
        """Every track one frame on; a lost track's size stops changing (as in ByteTrack)."""
        for track in self.tracks:
            if track.status == LOST:
                track.mean[6:8] = 0.0
            track.mean, track.covariance = self.kalman.predict(track.mean, track.covariance)
            track.missed += 1

    def _match(self, tracks: list[TrackState], candidates: np.ndarray, detections: tuple, min_iou: float,
               use_appearance: bool) -> tuple[list[TrackState], np.ndarray]:
        """Associate `tracks` with the detections at indices `candidates`, update the matched ones, and
        answer (tracks left unmatched, candidate indices left unmatched)."""
        boxes, scores, classes, embeddings = detections
        track_boxes = np.array([t.box for t in tracks]).reshape(-1, 4)
        same_class = None
        if self.options.class_aware:
            same_class = np.array([t.category_id for t in tracks])[:, None] == classes[candidates][None, :]
        appearance = None
        if use_appearance and embeddings is not None:
            appearance = appearance_distances(tracks, embeddings[candidates])
        matches, left_tracks, left_dets = associate(
            track_boxes, boxes[candidates], min_iou, same_class=same_class, appearance=appearance,
            appearance_weight=self.options.appearance_weight, max_appearance=self.options.max_appearance_distance)
        for t, d in matches:
            index = int(candidates[d])
            embedding = None if embeddings is None else embeddings[index]
            self._hit(tracks[t], boxes[index], float(scores[index]), int(classes[index]), embedding)
        return [tracks[t] for t in left_tracks], candidates[left_dets]

    def _hit(self, track: TrackState, box: np.ndarray, score: float, category_id: int,
             embedding: np.ndarray | None) -> None:
        """Correct a track with its matched detection; confirm it (and give it an id) once it has enough hits."""
        track.mean, track.covariance = self.kalman.update(track.mean, track.covariance, box)
        track.score, track.category_id, track.missed = score, category_id, 0
        track.hits += 1
        if embedding is not None:
            track.embedding = blend(track.embedding, embedding, self.options.embedding_momentum)
        if track.status == TENTATIVE and track.hits >= self.options.min_hits:
            self._confirm(track)
        elif track.status == LOST:
            track.status = TRACKED

    def _confirm(self, track: TrackState) -> None:
        track.status, track.track_id = TRACKED, self.next_id
        self.next_id += 1

    def _start(self, candidates: np.ndarray, detections: tuple) -> None:
        """New tentative tracks from leftover high detections that score new_track_threshold or more."""
        boxes, scores, classes, embeddings = detections
        for index in candidates:
            if scores[index] < self.options.new_track_threshold:
                continue
            mean, covariance = self.kalman.initiate(boxes[index])
            embedding = None if embeddings is None else blend(None, embeddings[index], 0.0)
            track = TrackState(mean, covariance, float(scores[index]), int(classes[index]), embedding=embedding)
            self.tracks.append(track)
            if self.frame == 1 or self.options.min_hits <= 1:
                self._confirm(track)

    def _forget(self, dropped: list[TrackState]) -> None:
        """Drop unconfirmed tracks that missed a frame and tracks lost for more than max_age frames."""
        gone = {id(t) for t in dropped}
        self.tracks = [t for t in self.tracks if id(t) not in gone
                       and not (t.status == LOST and t.missed > self.options.max_age)]


def blend(old: np.ndarray | None, new: np.ndarray, momentum: float) -> np.ndarray:
    """Unit-length moving average of embeddings: momentum of the old, the rest of the new."""
    new = np.asarray(new, dtype=np.float64) / max(float(np.linalg.norm(new)), 1e-12)
    mixed = new if old is None else momentum * old + (1 - momentum) * new
    return mixed / max(float(np.linalg.norm(mixed)), 1e-12)


def appearance_distances(tracks: list[TrackState], embeddings: np.ndarray) -> np.ndarray:
    """Cosine distances [T, D] of track embeddings to detection embeddings; NaN rows for tracks without one."""
    distances = np.full((len(tracks), len(embeddings)), np.nan)
    for row, track in enumerate(tracks):
        if track.embedding is not None and len(embeddings):
            distances[row] = cosine_distance(track.embedding[None], embeddings)[0]
    return distances


def check_inputs(boxes, scores, classes, embeddings) -> tuple:
    """Arrays of one length N: boxes [N, 4] float, scores [N], classes [N] int (0 when None), embeddings
    [N, D] float or None; ValueError when the lengths differ."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    classes = np.zeros(len(boxes), np.int64) if classes is None else np.asarray(classes, np.int64).reshape(-1)
    if embeddings is not None:
        embeddings = np.asarray(embeddings, dtype=np.float64).reshape(len(embeddings), -1)
    lengths = {len(boxes), len(scores), len(classes)} | ({len(embeddings)} if embeddings is not None else set())
    if len(lengths) != 1:
        raise ValueError(f"boxes, scores, classes (and embeddings) differ in length: {sorted(lengths)}")
    return boxes, scores, classes, embeddings


@TRACKERS.register("bytetrack")
def bytetrack(**options) -> ByteTracker:
    """TRACKERS entry: a ByteTracker; keyword options are ByteTrackOptions fields."""
    return ByteTracker(ByteTrackOptions(**options))
