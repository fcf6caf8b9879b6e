"""Files at the edges: pictures, COCO files, video sources and sinks, and the atomic writer they all use."""
