"""MOTS text and scoring: figures computed by hand for small cases equal those the scoring (TrackEval) gives."""

from __future__ import annotations

import numpy as np
import pytest

from object_detection_utils.detections import TRACK_ID, Detections
from object_detection_utils.errors import InstanceSegmentationError
from object_detection_utils.tracking.mots import mots_lines, parse_mots

pytest.importorskip("trackeval")
from object_detection_utils.tracking.scoring import score_tracks

SIZE = (20, 30)


def objects(frames: list[list[tuple[int, int]]]):
    """MOTS objects of (track id, x) 4x4 squares at y = 5, per frame, through the MOTS text."""
    lines = []
    for index, items in enumerate(frames):
        masks = np.zeros((len(items), *SIZE), bool)
        for k, (_, x) in enumerate(items):
            masks[k, 5:9, x:x + 4] = True
        n = len(items)
        found = Detections(np.zeros((n, 4), np.float32), np.full(n, 2, np.int32), ("b",) * n,
                           np.ones(n, np.float32), masks, SIZE, {TRACK_ID: np.array([i for i, _ in items])})
        lines += mots_lines(index, found)
    return parse_mots("\n".join(lines))


def test_mots_lines_round_trip_masks_ids_and_classes():
    truth = objects([[(3, 2), (9, 20)]])
    assert [(o.frame, o.track_id, o.class_id, o.height, o.width) for o in truth] == [(0, 3, 2, 20, 30),
                                                                                      (0, 9, 2, 20, 30)]
    assert np.argwhere(truth[1].mask()).min(axis=0).tolist() == [5, 20]
    with pytest.raises(InstanceSegmentationError, match=r"^tracks.txt:2: not a MOTS line"):
        parse_mots("0 1 1 2 2 PP\n0 1 1 2 PP\n", "tracks.txt")


def test_perfect_tracks_score_one_everywhere():
    truth = objects([[(1, 2), (2, 20)], [(1, 4), (2, 18)], [(1, 6), (2, 16)]])
    for figures in score_tracks([(truth, truth)]).values():
        assert {k: figures[k] for k in ("HOTA", "IDF1", "MOTA", "IDSW", "sMOTSA")} == {
            "HOTA": 1.0, "IDF1": 1.0, "MOTA": 1.0, "IDSW": 0, "sMOTSA": 1.0}


def test_one_id_switch_and_one_miss_give_the_hand_computed_figures():
    # one object over 4 frames, tracked as id 1 then id 2 (one switch), plus a second object never tracked
    truth = objects([[(1, 2), (2, 20)], [(1, 3)], [(1, 4)], [(1, 5)]])
    tracks = objects([[(1, 2)], [(1, 3)], [(2, 4)], [(2, 5)]])
    figures = score_tracks([(truth, tracks)])["mask"]
    assert figures["IDSW"] == 1
    assert figures["MOTA"] == pytest.approx(1 - (1 + 0 + 1) / 5)  # 1 - (FN + FP + IDSW) / ground truth
    assert figures["IDF1"] == pytest.approx(2 * 2 / (5 + 4))  # 2 IDTP of the best id-to-id match
    # every match is exact: DetA = 4 / (4 + 1 + 0); each match's association is 2 / (2 + 2 + 0) = 0.5
    assert figures["DetA"] == pytest.approx(0.8) and figures["AssA"] == pytest.approx(0.5)
    assert figures["HOTA"] == pytest.approx(np.sqrt(0.8 * 0.5))
    assert figures["sMOTSA"] == pytest.approx((4 - 0 - 1) / 5)  # (soft TP - FP - IDSW) / ground truth


def test_the_score_command_prints_the_figures_of_two_mots_files(tmp_path, capsys):
    from object_detection_utils.apps import track_score

    truth = tmp_path / "truth.txt"
    truth.write_text("0 1 1 2 2 04\n1 1 1 2 2 04\n")  # one object filling a 2x2 picture, two frames
    assert track_score.main([str(truth), str(truth)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split() == ["box", "100.0", "100.0", "100.0", "100.0", "100.0", "0", "100.0"]
    assert track_score.cli.run_main(track_score.main, [str(tmp_path), str(truth)]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path} and {truth}: give two files or two folders"
