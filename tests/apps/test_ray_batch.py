"""The batch job on Ray Data (--ray): the local run's exact results, a killed model actor, an interrupted run
resumed, and s3:// in and out against a local S3 server. One local Ray instance (2 CPUs) for the module."""

from __future__ import annotations

import csv
import importlib.util
import json
import logging
import os
import select
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
import tiny_model
from PIL import Image

import instance_segmentation_images
from object_detection_utils import ModelLoadError, Segmenter, load_model, read_image
from object_detection_utils.apps import cli
from object_detection_utils.apps.batch import JOURNAL_NAME, BatchOptions, PipelineOptions, find_pictures, run_batch

# name -> (size (w, h), fill): the tiny model reports row 2 ("car") only on bright pictures.
PICTURES = {
    "a.jpg": ((64, 48), (60, 60, 60)),
    "b.png": ((68, 52), (220, 220, 220)),
    "c.bmp": ((70, 54), (90, 90, 90)),
    "sub/d.webp": ((72, 58), (200, 200, 200)),
    "sub/000000000139.png": ((80, 64), (30, 30, 30)),
}
TIMINGS = ("inference_seconds", "postprocess_seconds")


@pytest.fixture(scope="module")
def s3_server():
    """A local S3 server (moto) on 127.0.0.1, found through the usual AWS environment variables."""
    server_module = pytest.importorskip("moto.server", reason='the S3 test needs moto: pip install -e ".[test]"')
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    yield env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    server.stop()


@pytest.fixture(scope="module")
def ray_cluster(s3_server, tmp_path_factory) -> Path:
    """A local Ray with 2 CPUs, shared by the module's tests (started after the S3 server, so that its
    workers get the server's address); its workers' cache folder (conversions), away from the user's."""
    ray = pytest.importorskip("ray", reason='--ray needs Ray: pip install -e ".[ray]"')
    from object_detection_utils.apps.batch.ray_cluster import connect

    workers_cache = tmp_path_factory.mktemp("ray_workers_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INSTANCE_SEGMENTATION_CACHE", str(workers_cache))  # inherited by the workers Ray starts
        patch.setenv("RAY_USAGE_STATS_ENABLED", "1")  # a user's own setting: left as it was in this process,
        connect(num_cpus=2)
        assert os.environ["RAY_USAGE_STATS_ENABLED"] == "1"
    # ... while the processes Ray started (its head's usage reporter among them) run with usage statistics off
    started_with = ray.get(ray.remote(lambda: os.environ.get("RAY_USAGE_STATS_ENABLED")).options(num_cpus=0).remote())
    assert started_with == "0"
    yield workers_cache
    ray.shutdown()


def make_pictures(folder: Path, broken: bool = True) -> Path:
    for name, (size, fill) in PICTURES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, fill).save(folder / name, **({"lossless": True} if name.endswith(".webp") else {}))
    if broken:
        (folder / "broken.jpg").write_bytes(b"this is not a picture")
    return folder


def local_run(model_dir: Path, pictures: Path, out: Path, recursive: bool = True, backend: str = "tensorflow"
              ) -> None:
    report = run_batch(Segmenter(load_model(model_dir, backend=backend)),
                       find_pictures([pictures], recursive=recursive),
                       BatchOptions(output_dir=out, masks=True, coco_json=out / "results.json",
                                    summary=out / "summary.csv"), PipelineOptions(progress=False),
                       log=lambda line: None)
    assert report.done > 0


def ray_script(pictures: str, out: str, model_dir: Path, *extra: str) -> list[str]:
    return ["--ray", "-i", pictures, "-r", "-o", out, "--model", str(model_dir), "--masks", "--no-progress",
            "--coco-json", f"{out}/results.json", "--summary", f"{out}/summary.csv", *extra]


def journal(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / JOURNAL_NAME).read_text().splitlines()]


def output_files(out: Path) -> dict[str, bytes]:
    """Every overlay and mask PNG by relative path (not the journal, COCO file or summary)."""
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and not p.name.startswith(".") and p.name not in ("results.json", "summary.csv")}


def summary_rows(path: Path) -> list[dict]:
    with open(path, newline="") as file:
        return [{k: v for k, v in row.items() if k not in TIMINGS} for row in csv.DictReader(file)]


def assert_same_results(local: Path, remote: Path, unlike: tuple[str, ...] = (), moved: tuple[str, str] = ("", "")
                        ) -> None:
    """The Ray run's files are the local run's: same overlays and masks byte for byte, the same COCO JSON
    (boxes, scores, RLE counts, ids), the same records and summary but for the timings (and `unlike` fields;
    failures name the pictures' place, `moved` = (local folder, remote folder))."""
    assert output_files(remote) == output_files(local)
    assert json.loads((remote / "results.json").read_text()) == json.loads((local / "results.json").read_text())

    def untimed(records: list[dict]) -> list[dict]:
        return [{k: v for k, v in record.items() if k not in (*TIMINGS, *unlike)} for record in records]

    assert untimed(journal(remote)) == untimed(journal(local))
    expected = [{**row, "error": row["error"].replace(*moved)} for row in summary_rows(local / "summary.csv")]
    assert summary_rows(remote / "summary.csv") == expected


def test_the_ray_run_gives_the_local_runs_results_on_the_tiny_model(ray_cluster, tiny_frozen_dir, tmp_path,
                                                                     capsys):
    """The same files, failures and exported labels (labelme) as the same command run locally."""
    from object_detection_utils.training.labels.round_trip import read_detections

    pictures = make_pictures(tmp_path / "pictures")
    runs = {}
    for where in ("local", "ray"):
        args = ray_script(str(pictures), str(tmp_path / where), tiny_frozen_dir,
                          "--export-labels", "labelme", str(tmp_path / f"{where}-labels"))
        runs[where] = instance_segmentation_images.main(args if where == "ray" else args[1:]), capsys.readouterr().err
    out = tmp_path / "ray"
    code, stderr = runs["ray"]
    assert code == 1 == runs["local"][0]  # the broken file, reported by name, as locally
    assert "done 5, skipped 0, failed 1" in stderr and "pictures/s" in stderr
    assert f"failed: {pictures / 'broken.jpg'}: not a picture" in stderr
    assert_same_results(tmp_path / "local", out)
    coco = json.loads((out / "results.json").read_text())
    assert len(coco["annotations"]) == 12 and {i["id"] for i in coco["images"]} >= {139}
    assert not [p for p in out.rglob("*") if p.name.endswith(".part")]

    def exported(folder: Path) -> dict[str, dict]:
        return {p.relative_to(folder).as_posix(): json.loads(p.read_text()) for p in sorted(folder.rglob("*.json"))}

    local = exported(tmp_path / "local-labels")
    assert len(local) == len(PICTURES) and exported(tmp_path / "ray-labels") == local
    back = read_detections(tmp_path / "ray-labels", "labelme", pictures)
    assert sum(len(detections) for detections in back.values()) == 12  # the tiny model's instances, as in COCO


def test_the_ray_run_gives_the_local_runs_results_on_the_trained_model(ray_cluster, trained_model_dir, tmp_path,
                                                                        capsys):
    pictures = trained_model_dir / "examples"
    local_run(trained_model_dir, pictures, tmp_path / "local")
    out = tmp_path / "ray"
    assert instance_segmentation_images.main(ray_script(str(pictures), str(out), trained_model_dir)) == 0
    assert f"done {len(list(pictures.iterdir()))}, skipped 0, failed 0" in capsys.readouterr().err
    assert_same_results(tmp_path / "local", out)
    classes = {a["category_id"] for a in json.loads((out / "results.json").read_text())["annotations"]}
    assert classes == {1, 2, 3}  # circle, square, triangle: the model card's expectation


def test_the_ray_run_gives_the_local_runs_results_on_a_matterport_h5(ray_cluster, matterport_weights,
                                                                     matterport_config_file, tmp_path, capsys):
    pictures = make_pictures(tmp_path / "pictures", broken=False)
    matterport = ("--matterport-config", str(matterport_config_file), "--min-score", "0")
    local = tmp_path / "local"
    assert instance_segmentation_images.main(
        ray_script(str(pictures), str(local), matterport_weights, *matterport)[1:]) == 0  # without --ray
    out = tmp_path / "ray"
    assert instance_segmentation_images.main(ray_script(str(pictures), str(out), matterport_weights, *matterport)) == 0
    assert f"done {len(PICTURES)}, skipped 0, failed 0" in capsys.readouterr().err
    assert_same_results(local, out)  # matterport's mask unmolding in the writing tasks too, byte for byte
    assert json.loads((out / "results.json").read_text())["annotations"]


def test_the_actors_run_the_model_on_the_back_end_asked_for(ray_cluster, tiny_frozen_dir, tmp_path):
    import ray.data

    from object_detection_utils.apps.batch.ray_job import run_ray_batch
    from object_detection_utils.predictor import SegmenterSpec

    context = ray.data.DataContext.get_current()
    before = context.execution_options.preserve_order, context.enable_progress_bars
    lines: list[str] = []
    report = run_ray_batch(SegmenterSpec(str(tiny_frozen_dir), backend="tensorflow"),
                           find_pictures([make_pictures(tmp_path / "pictures", broken=False)], recursive=True),
                           BatchOptions(output_dir=tmp_path / "out"), progress=False, log=lines.append)
    assert report.done == len(PICTURES)
    assert lines == ["model actors: tiny_tf1_coco runs on tensorflow"]
    context = ray.data.DataContext.get_current()  # the job set its own order and bars for the run, then put them back
    assert (context.execution_options.preserve_order, context.enable_progress_bars) == before


def test_an_unknown_back_end_is_refused_before_ray_runs(ray_cluster, tiny_frozen_dir, tmp_path):
    from object_detection_utils.apps.batch.ray_job import run_ray_batch
    from object_detection_utils.predictor import SegmenterSpec

    with pytest.raises(ModelLoadError, match=r"^unknown back end 'cuda': choose auto, tensorflow, openvino, "):
        run_ray_batch(SegmenterSpec(str(tiny_frozen_dir), backend="cuda"), [], BatchOptions(output_dir=tmp_path / "out"),
                      progress=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(importlib.util.find_spec("openvino") is None,
                    reason="OpenVINO is not installed (pip install -e '.[openvino]')")
@pytest.mark.skipif(importlib.util.find_spec("official") is None,
                    reason="Model Garden is not installed (the train extra)")
def test_the_actors_run_our_export_on_openvino_from_the_shared_conversion_cache(ray_cluster, trained_model_dir,
                                                                               openvino_conversion, tmp_path,
                                                                               monkeypatch):
    """The actors find the conversion a cluster's shared cache holds (this run's one conversion of the model, put
    in the workers' cache) and convert nothing; the local run finds the same entry."""
    from object_detection_utils.apps.batch.ray_job import run_ray_batch
    from object_detection_utils.predictor import SegmenterSpec

    (converted,) = (openvino_conversion(trained_model_dir) / "openvino").iterdir()
    shutil.copytree(converted, ray_cluster / "openvino" / converted.name)
    pictures, out, lines = trained_model_dir / "examples", tmp_path / "ray", []
    report = run_ray_batch(SegmenterSpec(str(trained_model_dir), backend="openvino"), find_pictures([pictures]),
                           BatchOptions(output_dir=out, masks=True, coco_json=out / "results.json",
                                        summary=out / "summary.csv"), progress=False, log=lines.append)
    assert (report.done, report.failed) == (len(list(pictures.iterdir())), 0)
    assert lines == [f"model actors: {trained_model_dir.name} runs on openvino f32"]
    (entry,) = (ray_cluster / "openvino").iterdir()  # the cached conversion, and no other
    assert entry.name == converted.name and json.loads((entry / "gate.json").read_text())["passed"]

    monkeypatch.setenv("INSTANCE_SEGMENTATION_CACHE", str(ray_cluster))
    local_run(trained_model_dir, pictures, tmp_path / "local", backend="openvino")  # found in the same cache
    assert list((ray_cluster / "openvino").iterdir()) == [entry]  # converted and gated once
    assert_same_results(tmp_path / "local", out)


# ---------------------------------------------------------------------------------------------- gated model
# The tiny model, made to write tiny_model.GATE_PAYLOAD bytes to gates/<red value of the picture's first pixel> before
# answering. Where that path is a FIFO the test made, the actor waits there until the test drains it.

GATED_PICTURES = 8


@pytest.fixture()
def gated(tmp_path) -> tuple[Path, Path, Path]:
    """(pictures, gated model, gates folder); the test makes the FIFOs it needs."""
    return tiny_model.write_gated_run(tmp_path, GATED_PICTURES)


class Gate:
    """Picture i's gate, a FIFO: `wait` until the model is writing to it, then `release` or `abandon` it."""

    def __init__(self, gates: Path, i: int) -> None:
        self.path = gates / str(tiny_model.gate_key(i))
        if not self.path.exists():
            os.mkfifo(self.path)

    def wait(self, job: threading.Thread, timeout: float = 180.0) -> Gate:
        self._fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        deadline = time.monotonic() + timeout
        while not select.select([self._fd], [], [], 0.5)[0]:
            if not job.is_alive() or time.monotonic() > deadline:
                os.close(self._fd)
                pytest.fail(f"{self.path.name}: the picture did not reach the model")
        return self

    def writers(self) -> list[int]:
        """The processes writing to the gate: the model actor running the picture."""
        found = []
        for fd_dir in Path("/proc").glob("[0-9]*/fd"):
            if int(fd_dir.parent.name) == os.getpid():
                continue
            try:
                if any(os.readlink(fd) == str(self.path) for fd in fd_dir.iterdir()):
                    found.append(int(fd_dir.parent.name))
            except OSError:  # a process that ended meanwhile, or not ours to read
                continue
        return found

    def kill_writer(self, timeout: float = 60.0) -> None:
        """SIGKILL the actor at the gate, and wait until it is gone (its files closed)."""
        [pid] = self.writers()
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while not dead(pid):
            if time.monotonic() > deadline:
                pytest.fail(f"process {pid} still runs after SIGKILL")
            time.sleep(0.05)
        os.close(self._fd)  # what it wrote into the FIFO goes with the last open end

    def release(self) -> None:
        assert tiny_model.drain_gate(self._fd) == tiny_model.GATE_PAYLOAD



def dead(pid: int) -> bool:
    """Whether process `pid` is gone, reaped: on some kernels (gVisor) a zombie still holds its files, and the
    FIFO with what it wrote."""
    return not Path(f"/proc/{pid}").exists()


def start_job(model_dir: Path, pictures: Path, out: Path, stop: threading.Event | None = None
              ) -> tuple[threading.Thread, dict]:
    from object_detection_utils.apps.batch.ray_job import run_ray_batch
    from object_detection_utils.predictor import SegmenterSpec

    result: dict = {}

    def job() -> None:
        result["report"] = run_ray_batch(
            SegmenterSpec(str(model_dir)), find_pictures([pictures]),
            BatchOptions(output_dir=out, coco_json=out / "results.json"), progress=False, stop=stop,
            log=lambda line: None)

    thread = threading.Thread(target=job, daemon=True)
    thread.start()
    return thread, result


def test_a_killed_model_actor_is_replaced_and_every_picture_is_done_once(ray_cluster, gated, tmp_path):
    pictures, model_dir, gates = gated
    out = tmp_path / "out"
    gate = Gate(gates, 3)
    job, result = start_job(model_dir, pictures, out)
    gate.wait(job)  # picture 3 is in the model
    gate.kill_writer()
    Gate(gates, 3).wait(job).release()  # the replacement actor runs picture 3 again
    job.join(timeout=300)
    assert not job.is_alive()

    report = result["report"]
    every = [tiny_model.gated_picture_name(i) for i in range(GATED_PICTURES)]
    assert (report.done, report.skipped, report.failed) == (GATED_PICTURES, 0, 0)
    assert [record["file"] for record in journal(out)] == every  # each once, in input order
    coco = json.loads((out / "results.json").read_text())
    assert [image["file_name"] for image in coco["images"]] == every
    for name in every:
        assert read_image(out / name).shape == (64, 96, 3)
    assert not [p for p in out.rglob("*") if p.name.endswith(".part")]


def test_an_interrupted_run_is_resumed_by_the_rerun(ray_cluster, gated, tmp_path):
    pictures, model_dir, gates = gated
    out = tmp_path / "out"
    stop = threading.Event()
    gate = Gate(gates, 4)
    job, result = start_job(model_dir, pictures, out, stop)
    gate.wait(job)
    stop.set()  # what Ctrl+C does: the run ends at the next finished picture
    gate.release()
    job.join(timeout=300)
    assert not job.is_alive()

    first = result["report"]
    recorded = [record["file"] for record in journal(out)]
    every = [tiny_model.gated_picture_name(i) for i in range(GATED_PICTURES)]
    assert first.interrupted and 1 <= first.done == len(recorded) < GATED_PICTURES
    assert recorded == every[: len(recorded)]
    for name in recorded:
        assert read_image(out / name).shape == (64, 96, 3)
    stamps = {name: (out / name).stat().st_mtime_ns for name in recorded}

    gate.path.unlink()  # the rerun passes freely
    job, result = start_job(model_dir, pictures, out)
    job.join(timeout=300)
    assert not job.is_alive()
    rerun = result["report"]
    assert (rerun.done, rerun.skipped, rerun.failed, rerun.interrupted) == (
        GATED_PICTURES - len(recorded), len(recorded), 0, False)
    assert {name: (out / name).stat().st_mtime_ns for name in recorded} == stamps  # finished ones not redone
    assert [record["file"] for record in journal(out)] == every
    assert [image["file_name"] for image in json.loads((out / "results.json").read_text())["images"]] == every
    assert not [p for p in out.rglob("*") if p.name.endswith(".part")]


def test_s3_in_and_out_on_a_local_server(ray_cluster, s3_server, tiny_frozen_dir, tmp_path, capsys):
    import boto3

    pictures = make_pictures(tmp_path / "pictures")
    local_run(tiny_frozen_dir, pictures, tmp_path / "local")
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="photos")
    for path in pictures.rglob("*"):
        if path.is_file():
            s3.upload_file(str(path), "photos", f"in/{path.relative_to(pictures).as_posix()}")

    args = ray_script("s3://photos/in", "s3://photos/out", tiny_frozen_dir)
    assert instance_segmentation_images.main(args) == 1
    assert "done 5, skipped 0, failed 1" in capsys.readouterr().err

    remote = tmp_path / "from_s3"
    for item in s3.list_objects_v2(Bucket="photos", Prefix="out/")["Contents"]:
        target = remote / item["Key"][len("out/"):]
        target.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file("photos", item["Key"], str(target))
    assert_same_results(tmp_path / "local", remote, unlike=("source_mtime_ns",),  # the object's, not the file's
                        moved=(str(pictures), "s3://photos/in"))

    assert instance_segmentation_images.main(args) == 1  # the rerun skips what is complete
    stderr = capsys.readouterr().err
    assert "done 0, skipped 5, failed 1" in stderr and "s3://photos/in/broken.jpg: not a picture" in stderr


def test_remote_files_without_ray_are_refused_in_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        instance_segmentation_images.main(["-i", "s3://photos/in", "-o", "out"])
    assert exit_info.value.code == 2
    assert "s3://photos/in: remote files are read and written by the Ray job: add --ray" in capsys.readouterr().err


def test_without_ray_the_option_says_what_to_install(monkeypatch, tiny_frozen_dir, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails, as when it is not installed
    pictures = make_pictures(tmp_path / "pictures", broken=False)
    code = cli.run_main(instance_segmentation_images.main, ["--ray", "-i", str(pictures), "-o", str(tmp_path / "out"),
                                                            "--model", str(tiny_frozen_dir)])
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        'error: the --ray option needs Ray: pip install "instance-segmentation[ray]" (or pip install -e ".[ray]")']
