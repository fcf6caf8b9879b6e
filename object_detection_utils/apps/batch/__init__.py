"""Segmenting folders of pictures: a pipeline that keeps the model busy, resumes, and never half-writes a file.

    inputs.py    which pictures a run covers (folders, globs, files) and the names their outputs take
    journal.py   the per-picture records that make a run resumable
    outputs.py   one picture's files: the overlay and per-instance mask PNGs, and its journal record
    pipeline.py  reader threads, the model, writer threads
    run_files.py the run's COCO JSON and summary, streamed from the journal
    output_folder.py  claiming the output folder: writable, and one run at a time
    ray_job.py   the same job on Ray Data (--ray): decoding tasks, model actors, writing tasks
    remote_files.py   s3:// and other pyarrow filesystems for inputs and outputs of the Ray job
"""

from .inputs import Picture, find_pictures
from .journal import JOURNAL_NAME, Journal
from .outputs import masks_dir, overlay_path
from .pipeline import BatchOptions, BatchReport, PipelineOptions, run_batch
from .run_files import write_coco_json, write_summary

__all__ = [
    "JOURNAL_NAME", "BatchOptions", "BatchReport", "Journal", "PipelineOptions", "Picture", "find_pictures",
    "masks_dir", "overlay_path", "run_batch", "write_coco_json", "write_summary",
]
