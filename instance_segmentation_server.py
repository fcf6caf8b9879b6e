#!/usr/bin/env python3
"""Serve a model over HTTP: a JSON API, TF Serving's REST API, health checks, metrics and a page to try it.

    python instance_segmentation_server.py --model ../shared/models/shapes-r18-128

The command is object_detection_utils/apps/serve/command.py; --help says the rest.
"""

from object_detection_utils.apps.serve.command import main, run

__all__ = ["main", "run"]

if __name__ == "__main__":
    run()
