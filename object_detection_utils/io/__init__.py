"""Files at the edges: pictures, COCO results, video sources and sinks."""
