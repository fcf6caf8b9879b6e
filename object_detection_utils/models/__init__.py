"""Where models come from: zoo names, download, verification, cache, archives, and loading."""
