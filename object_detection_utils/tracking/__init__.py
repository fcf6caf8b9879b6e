"""Tracking across video frames: the tracker, counting over lines and zones, MOTS text and TrackEval scoring."""
