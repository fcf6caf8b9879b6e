"""Drawing detections on pictures, and windows to show them."""
