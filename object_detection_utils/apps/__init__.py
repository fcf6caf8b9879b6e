"""The jobs behind the command-line scripts: shared CLI pieces, folder batches, video, evaluation."""
