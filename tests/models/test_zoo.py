"""Models by zoo name: catalogue, download from a local server, verification, safe unpacking, cache, offline."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import os
import queue
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import tiny_model
from zoo_server import ZooServer, tar_gz

import instance_segmentation
from object_detection_utils import load_model, write_image
from object_detection_utils.apps import cli, single_image
from object_detection_utils.errors import ModelLoadError
from object_detection_utils.models import catalogue, zoo
from object_detection_utils.models.archive import extract_archive
from object_detection_utils.models.dispatch import is_model_folder
from object_detection_utils.models.download import DownloadError

TF1_NAME = "mask_rcnn_inception_v2_coco_2018_01_28"
TF1_ALIAS = "mask_rcnn_inception_v2_coco"
TF2_NAME = "mask_rcnn_inception_resnet_v2_1024x1024_coco17_gpu-8"


@pytest.fixture(scope="module")
def zoo_archives(tiny_frozen_dir, tiny_saved_dir, tiny_boxes_only_dir) -> dict[str, bytes]:
    """URL path -> a zoo-layout archive of the right tiny model, for every catalogued model."""
    archives = {}
    for model in catalogue.CATALOGUE.values():
        if model.kind == "saved_model":
            source = tiny_saved_dir
        else:
            source = tiny_frozen_dir if model.has_masks else tiny_boxes_only_dir
        archives[f"/{model.archive_path}"] = tar_gz({model.name: source})
    return archives


@pytest.fixture
def server(zoo_archives, monkeypatch):
    server = ZooServer(zoo_archives)
    monkeypatch.setenv(catalogue.ZOO_URL_ENV, server.url)
    yield server
    server.stop()


@pytest.fixture
def models_dir(tmp_path) -> Path:
    return tmp_path / "models"


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[1:]}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def archive_of(server: ZooServer, name: str) -> bytes:
    return server.files[f"/{catalogue.CATALOGUE[name].archive_path}"]


# --- the catalogue ---------------------------------------------------------------------------------------------

def test_catalogue_has_the_zoo_mask_models_with_published_figures():
    mask_models = {name: model for name, model in catalogue.CATALOGUE.items() if model.has_masks}
    assert set(mask_models) == {
        "mask_rcnn_inception_v2_coco_2018_01_28", "mask_rcnn_resnet50_atrous_coco_2018_01_28",
        "mask_rcnn_resnet101_atrous_coco_2018_01_28", "mask_rcnn_inception_resnet_v2_atrous_coco_2018_01_28",
        TF2_NAME,
    }
    figures = {name: (m.speed_ms, m.box_map, m.mask_map, m.kind) for name, m in mask_models.items()}
    assert figures["mask_rcnn_inception_v2_coco_2018_01_28"] == (79, 25, None, "frozen_graph")
    assert figures["mask_rcnn_resnet50_atrous_coco_2018_01_28"] == (343, 29, None, "frozen_graph")
    assert figures["mask_rcnn_resnet101_atrous_coco_2018_01_28"] == (470, 33, None, "frozen_graph")
    assert figures["mask_rcnn_inception_resnet_v2_atrous_coco_2018_01_28"] == (771, 36, None, "frozen_graph")
    assert figures[TF2_NAME] == (301, 39.0, 34.6, "saved_model")
    assert {m.name for m in catalogue.CATALOGUE.values() if not m.has_masks} == {
        "ssd_mobilenet_v2_coco_2018_03_29", "faster_rcnn_inception_v2_coco_2018_01_28",
        "faster_rcnn_resnet50_coco_2018_01_28",
    }


def test_the_default_model_is_catalogued():
    assert catalogue.catalogued(zoo.DEFAULT_MODEL).has_masks


def test_urls_follow_the_zoo_layout_and_the_mirror_variable(monkeypatch):
    monkeypatch.delenv(catalogue.ZOO_URL_ENV, raising=False)
    assert catalogue.CATALOGUE[TF1_NAME].url == (
        f"http://download.tensorflow.org/models/object_detection/{TF1_NAME}.tar.gz")
    assert catalogue.CATALOGUE[TF2_NAME].url == (
        f"http://download.tensorflow.org/models/object_detection/tf2/20200711/{TF2_NAME}.tar.gz")
    monkeypatch.setenv(catalogue.ZOO_URL_ENV, "http://mirror.example/zoo/")
    assert catalogue.CATALOGUE[TF2_NAME].url == f"http://mirror.example/zoo/tf2/20200711/{TF2_NAME}.tar.gz"


def test_aliases_resolve_to_full_names():
    assert catalogue.catalogued(TF1_ALIAS).name == TF1_NAME
    assert catalogue.catalogued("mask_rcnn_resnet50_atrous_coco").name == "mask_rcnn_resnet50_atrous_coco_2018_01_28"
    assert catalogue.catalogued("mask_rcnn_inception_resnet_v2_1024x1024").name == TF2_NAME
    assert catalogue.catalogued(TF1_NAME).name == TF1_NAME
    assert catalogue.catalogued("mask_rcnn") is None
    assert len(catalogue.ALIASES) == len(catalogue.CATALOGUE)  # no alias shadows another


def test_unknown_name_lists_close_matches(models_dir, no_network):
    with pytest.raises(ModelLoadError) as error:
        zoo.find_model("mask_rcnn_resnet50_coco", models_dir)
    message = str(error.value)
    assert message.startswith("unknown model 'mask_rcnn_resnet50_coco': did you mean ")
    assert "mask_rcnn_resnet50_atrous_coco" in message and "--list-models" in message
    assert "\n" not in message
    assert not models_dir.exists()  # nothing created for a typo


def test_unknown_name_from_the_script_is_one_line_and_exit_2(models_dir, capsys, no_network):
    code = cli.run_main(instance_segmentation.main,
                        ["--model", "mask_rcnn_inceptoin_v2_coco", "--models-dir", str(models_dir), "--no-display"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "did you mean mask_rcnn_inception_v2_coco" in err[0]


# --- download, cache, offline ----------------------------------------------------------------------------------

def test_first_download_shows_progress_then_the_cache_is_used_offline(
        server, models_dir, capsys, monkeypatch, tiny_frozen_dir):
    path = zoo.find_model(TF1_ALIAS, models_dir)

    assert path == models_dir / TF1_NAME
    assert (path / "frozen_inference_graph.pb").read_bytes() == (
        (tiny_frozen_dir / "frozen_inference_graph.pb").read_bytes())
    assert server.archive_requests() == [(f"/{TF1_NAME}.tar.gz", None)]
    progress = capsys.readouterr().err
    archive = archive_of(server, TF1_NAME)
    assert progress.startswith(f"\r{TF1_NAME}: ") and "100%" in progress
    # nothing left in flight; the archive's digest recorded for later downloads
    downloads = models_dir / ".downloads"
    assert sorted(p.name for p in downloads.iterdir()) == [f"{TF1_NAME}.lock", f"{TF1_NAME}.tar.gz.sha256"]
    digest = hashlib.sha256(archive).hexdigest()
    assert (downloads / f"{TF1_NAME}.tar.gz.sha256").read_text() == f"{digest}  {TF1_NAME}.tar.gz\n"

    server.stop()
    monkeypatch.setattr(socket.socket, "connect", _refuse_network)
    monkeypatch.setattr(socket, "create_connection", _refuse_network)
    assert zoo.find_model(TF1_ALIAS, models_dir) == path
    assert zoo.find_model(TF1_NAME, models_dir) == path
    model = load_model(TF1_ALIAS, models_dir=models_dir)
    assert model.name == TF1_NAME and model.kind == "frozen_graph" and model.has_masks
    np.testing.assert_allclose(model.predict(np.zeros((32, 48, 3), np.uint8))["detection_boxes"][0],
                               tiny_model.BOXES)


def _refuse_network(*args, **kwargs):
    raise AssertionError("network access attempted")


def test_every_catalogued_name_works_from_the_script(server, models_dir, tmp_path, capsys):
    picture = tmp_path / "black.png"
    write_image(picture, np.zeros((40, 60, 3), np.uint8))  # row 2 scores 0: only rows 0 and 1 are kept
    for model in catalogue.CATALOGUE.values():
        for spec in (model.alias, model.name):  # the first downloads, the second finds it
            output = tmp_path / f"{spec}.png"
            code = cli.run_main(instance_segmentation.main, [
                "-i", str(picture), "-o", str(output), "--model", spec, "--models-dir", str(models_dir),
                "--no-display"])
            out = capsys.readouterr().out.splitlines()
            assert code == 0, spec
            assert [line.split("\t")[1:3] for line in out] == [["person", "0.95"], ["dog", "0.80"]], spec
            assert output.is_file()
    assert len(server.archive_requests()) == len(catalogue.CATALOGUE)  # each archive fetched exactly once
    assert zoo.find_model(TF2_NAME, models_dir) == models_dir / TF2_NAME
    assert (models_dir / TF2_NAME / "saved_model" / "saved_model.pb").is_file()


def test_not_cached_and_offline_says_where_to_put_it_by_hand(server, models_dir, capsys):
    server.stop()  # the port is closed now: connection refused, as without network
    code = cli.run_main(instance_segmentation.main,
                        ["--model", TF1_ALIAS, "--models-dir", str(models_dir), "--no-display"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert f"{server.url}/{TF1_NAME}.tar.gz: cannot connect" in err[0]
    assert f"put the archive, or the folder it unpacks to, into {models_dir}/" in err[0]
    assert not (models_dir / TF1_NAME).exists()


def test_archive_put_by_hand_is_used_without_network(server, models_dir, no_network):
    models_dir.mkdir()
    (models_dir / f"{TF1_NAME}.tar.gz").write_bytes(archive_of(server, TF1_NAME))
    path = zoo.find_model(TF1_ALIAS, models_dir)
    assert path == models_dir / f"{TF1_NAME}.tar.gz"
    model = load_model(TF1_ALIAS, models_dir=models_dir, warm_up=False)
    assert model.name == TF1_NAME and model.has_masks
    assert server.requests == []


def _segment_with(spec: str, models_dir: Path, tmp_path: Path, capsys) -> tuple[int, list[str]]:
    picture = tmp_path / "black.png"
    write_image(picture, np.zeros((40, 60, 3), np.uint8))
    code = cli.run_main(instance_segmentation.main, [
        "-i", str(picture), "-o", str(tmp_path / "out.png"), "--model", spec, "--models-dir", str(models_dir),
        "--no-display"])
    return code, capsys.readouterr().err.strip().splitlines()


def test_a_truncated_archive_in_the_models_folder_is_moved_aside_and_fetched_again(server, models_dir, tmp_path,
                                                                                    capsys):
    models_dir.mkdir()
    archive = models_dir / f"{TF1_NAME}.tar.gz"
    good = archive_of(server, TF1_NAME)
    archive.write_bytes(good[: len(good) // 2])
    code, err = _segment_with(TF1_ALIAS, models_dir, tmp_path, capsys)
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"error: {archive}: cannot extract archive: ")
    aside = models_dir / f".{TF1_NAME}.tar.gz.damaged"
    assert err[0].endswith(f"[the models folder's copy of {TF1_NAME} is damaged: moved to {aside}; "
                           "run again to download it again]")
    assert aside.read_bytes() == good[: len(good) // 2] and not archive.exists()
    assert server.archive_requests() == []

    code, err = _segment_with(TF1_ALIAS, models_dir, tmp_path, capsys)  # the next connected run
    assert code == 0, err
    assert len(server.archive_requests()) == 1 and is_model_folder(models_dir / TF1_NAME)


def test_a_truncated_graph_in_a_fetched_model_is_moved_aside_and_fetched_again(server, models_dir, tmp_path, capsys):
    assert _segment_with(TF1_ALIAS, models_dir, tmp_path, capsys)[0] == 0
    graph = models_dir / TF1_NAME / "frozen_inference_graph.pb"
    graph.write_bytes(graph.read_bytes()[:1000])
    code, err = _segment_with(TF1_ALIAS, models_dir, tmp_path, capsys)
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"error: {graph}: not a TensorFlow frozen graph, or a truncated one")
    assert f"moved to {models_dir / ('.' + TF1_NAME + '.damaged')}; run again to download it again" in err[0]
    assert _segment_with(TF1_ALIAS, models_dir, tmp_path, capsys)[0] == 0
    assert len(server.archive_requests()) == 2


def test_a_broken_model_given_by_path_is_left_where_it_is(tiny_frozen_dir, tmp_path, capsys):
    mine = tmp_path / "mine"
    shutil.copytree(tiny_frozen_dir, mine)
    (mine / "frozen_inference_graph.pb").write_bytes(b"\x00" * 10)
    code, err = _segment_with(str(mine), tmp_path / "models", tmp_path, capsys)
    assert code == 2 and "moved" not in err[0] and (mine / "frozen_inference_graph.pb").is_file()


def test_seed_layout_models_dir_keeps_working(tiny_frozen_dir, tmp_path, no_network, monkeypatch):
    """A models folder made by hand outside the project (`<dir>/<name>/frozen_inference_graph.pb`)."""
    models = tmp_path / "my-models"
    (models / TF1_NAME).mkdir(parents=True)
    (models / TF1_NAME / "frozen_inference_graph.pb").write_bytes(
        (tiny_frozen_dir / "frozen_inference_graph.pb").read_bytes())
    (models / "my_own_model").symlink_to(tiny_frozen_dir, target_is_directory=True)
    assert zoo.find_model(TF1_ALIAS, models) == models / TF1_NAME
    assert zoo.find_model("my_own_model", models) == models / "my_own_model"  # not catalogued, still found
    monkeypatch.setenv("INSTANCE_SEGMENTATION_MODELS_DIR", str(models))
    assert zoo.find_model(TF1_NAME) == models / TF1_NAME


def test_unwritable_models_folder_is_one_clear_error(server, tmp_path):
    not_a_folder = tmp_path / "models"
    not_a_folder.write_text("a file where the models folder should be")
    with pytest.raises(DownloadError, match=f"{not_a_folder}: cannot store {TF1_NAME}: "):
        zoo.find_model(TF1_ALIAS, not_a_folder)


def test_download_false_never_fetches(server, models_dir):
    with pytest.raises(ModelLoadError, match=f"model '{TF1_NAME}' is not in {models_dir}: download "):
        zoo.find_model(TF1_ALIAS, models_dir, download=False)
    assert server.requests == []


def test_default_folder_is_the_cache(server, tmp_path, monkeypatch):
    monkeypatch.setenv("INSTANCE_SEGMENTATION_CACHE", str(tmp_path / "cache"))
    path = zoo.find_model(TF1_ALIAS)
    assert path == tmp_path / "cache" / "models" / TF1_NAME
    assert (path / "frozen_inference_graph.pb").is_file()


# --- verification ----------------------------------------------------------------------------------------------

def _with_sha256(monkeypatch, name: str, sha256: str | None) -> catalogue.ZooModel:
    entry = dataclasses.replace(catalogue.CATALOGUE[name], sha256=sha256)
    monkeypatch.setitem(catalogue.CATALOGUE, name, entry)
    return entry


def test_checksum_mismatch_removes_the_bad_file(server, models_dir, monkeypatch):
    _with_sha256(monkeypatch, TF1_NAME, "ab" * 32)
    with pytest.raises(DownloadError) as error:
        zoo.find_model(TF1_ALIAS, models_dir)
    message = str(error.value)
    actual = hashlib.sha256(archive_of(server, TF1_NAME)).hexdigest()
    assert f"checksum mismatch: got sha256 {actual}, expected {'ab' * 32} (the catalogue's; run again" in message
    assert message.endswith("the bad file was removed") and "\n" not in message
    assert not (models_dir / TF1_NAME).exists()
    assert not (models_dir / ".downloads" / f"{TF1_NAME}.tar.gz.part").exists()

    _with_sha256(monkeypatch, TF1_NAME, actual.upper())  # the right digest, in either case, passes
    assert zoo.find_model(TF1_ALIAS, models_dir) == models_dir / TF1_NAME
    assert not (models_dir / ".downloads" / f"{TF1_NAME}.tar.gz.sha256").exists()  # known digests need no record


def test_a_changed_archive_is_caught_by_the_recorded_digest(server, models_dir, tiny_boxes_only_dir):
    first = zoo.find_model(TF1_ALIAS, models_dir)
    recorded = hashlib.sha256(archive_of(server, TF1_NAME)).hexdigest()
    shutil.rmtree(first)  # the user deletes the model; meanwhile the server's archive changed
    server.files[f"/{TF1_NAME}.tar.gz"] = tar_gz({TF1_NAME: tiny_boxes_only_dir})
    digest_file = models_dir / ".downloads" / f"{TF1_NAME}.tar.gz.sha256"
    with pytest.raises(DownloadError, match=f"expected {recorded} \\(recorded at the first download; delete "
                                            f"{digest_file} if the archive really changed upstream\\)"):
        zoo.find_model(TF1_ALIAS, models_dir)
    assert not first.exists()
    assert not (models_dir / ".downloads" / f"{TF1_NAME}.tar.gz.part").exists()
    digest_file.unlink()  # the user accepts the new archive
    assert is_model_folder(zoo.find_model(TF1_ALIAS, models_dir))


# --- interrupted downloads -------------------------------------------------------------------------------------

def test_truncated_download_resumes_with_a_range_request(server, models_dir):
    archive = archive_of(server, TF1_NAME)
    half = len(archive) // 2
    server.truncate_next = half
    with pytest.raises(DownloadError,
                       match=f"download interrupted at {half} of {len(archive)} bytes.*run again to resume"):
        zoo.find_model(TF1_ALIAS, models_dir)
    part = models_dir / ".downloads" / f"{TF1_NAME}.tar.gz.part"
    assert part.read_bytes() == archive[:half]
    assert not (models_dir / TF1_NAME).exists()

    assert zoo.find_model(TF1_ALIAS, models_dir) == models_dir / TF1_NAME
    assert server.archive_requests() == [(f"/{TF1_NAME}.tar.gz", None), (f"/{TF1_NAME}.tar.gz", f"bytes={half}-")]
    assert not part.exists()
    recorded = (models_dir / ".downloads" / f"{TF1_NAME}.tar.gz.sha256").read_text().split()[0]
    assert recorded == hashlib.sha256(archive).hexdigest()


def test_truncated_download_restarts_when_the_server_ignores_ranges(server, models_dir):
    archive = archive_of(server, TF1_NAME)
    server.ranges = False
    server.truncate_next = 1000
    with pytest.raises(DownloadError, match="run again to resume"):
        zoo.find_model(TF1_ALIAS, models_dir)
    assert zoo.find_model(TF1_ALIAS, models_dir) == models_dir / TF1_NAME
    assert [r[1] for r in server.archive_requests()] == [None, "bytes=1000-"]  # asked to resume, got it all
    recorded = (models_dir / ".downloads" / f"{TF1_NAME}.tar.gz.sha256").read_text().split()[0]
    assert recorded == hashlib.sha256(archive).hexdigest()


def test_leftover_part_longer_than_the_archive_restarts(server, models_dir):
    archive = archive_of(server, TF1_NAME)
    part = models_dir / ".downloads" / f"{TF1_NAME}.tar.gz.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"x" * (len(archive) + 10))
    assert zoo.find_model(TF1_ALIAS, models_dir) == models_dir / TF1_NAME
    assert [r[1] for r in server.archive_requests()] == [f"bytes={len(archive) + 10}-", None]
    assert (models_dir / ".downloads" / f"{TF1_NAME}.tar.gz.sha256").read_text().split()[0] == (
        hashlib.sha256(archive).hexdigest())


def test_complete_part_from_a_crashed_run_is_not_fetched_again(server, models_dir):
    archive = archive_of(server, TF1_NAME)
    part = models_dir / ".downloads" / f"{TF1_NAME}.tar.gz.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(archive)
    assert zoo.find_model(TF1_ALIAS, models_dir) == models_dir / TF1_NAME
    assert [r[1] for r in server.archive_requests()] == [f"bytes={len(archive)}-"]  # answered 416, nothing sent


def test_missing_archive_on_the_server(server, models_dir):
    del server.files[f"/{TF1_NAME}.tar.gz"]
    with pytest.raises(DownloadError, match=f"{TF1_NAME}.tar.gz: server answered 404"):
        zoo.find_model(TF1_ALIAS, models_dir)


# --- malicious archives ----------------------------------------------------------------------------------------

def _tar_with(member: tarfile.TarInfo, data: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        ok = tarfile.TarInfo("model/frozen_inference_graph.pb")
        tar.addfile(ok, io.BytesIO(b""))
        member.size = len(data) if member.isfile() else 0
        tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return buffer.getvalue()


def _symlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


MALICIOUS = {
    "dotdot": (tarfile.TarInfo("model/../../escaped.txt"), "outside the destination"),
    "absolute": (tarfile.TarInfo("/tmp/escaped-by-absolute-path.txt"), "has an absolute path"),
    "symlink_out": (_symlink("model/link", "../../escaped.txt"), "outside the destination"),
    "absolute_symlink": (_symlink("model/link", "/etc/passwd"), "absolute path"),
}


@pytest.mark.parametrize("kind", sorted(MALICIOUS))
def test_extract_archive_refuses_members_escaping_the_folder(kind, tmp_path):
    member, reason = MALICIOUS[kind]
    archive = tmp_path / "box" / "evil.tar.gz"
    archive.parent.mkdir()
    archive.write_bytes(_tar_with(member, b"pwned"))
    destination = tmp_path / "box" / "out" / "model"
    with pytest.raises(ModelLoadError, match=f"{archive}: cannot extract archive: .*{reason}"):
        extract_archive(archive, destination)
    assert not destination.exists()
    assert sorted(p.name for p in (tmp_path / "box" / "out").iterdir()) == []  # the staging folder is gone
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "box" / "escaped.txt").exists()
    assert not Path("/tmp/escaped-by-absolute-path.txt").exists()


def test_malicious_download_is_refused_and_removed(server, models_dir, tmp_path):
    member, _ = MALICIOUS["dotdot"]
    server.files[f"/{TF1_NAME}.tar.gz"] = _tar_with(member, b"pwned")
    with pytest.raises(ModelLoadError, match="cannot extract archive: .*outside the destination"):
        zoo.find_model(TF1_ALIAS, models_dir)
    assert not (models_dir / TF1_NAME).exists()
    assert sorted(p.name for p in (models_dir / ".downloads").iterdir()) == [f"{TF1_NAME}.lock"]
    assert not any(p.name == "escaped.txt" for p in tmp_path.rglob("*"))


def test_archive_without_a_model_is_refused(server, models_dir):
    server.files[f"/{TF1_NAME}.tar.gz"] = tar_gz({f"{TF1_NAME}/README": b"no graph here"})
    with pytest.raises(ModelLoadError, match="the archive holds no detection model"):
        zoo.find_model(TF1_ALIAS, models_dir)
    assert not (models_dir / TF1_NAME).exists()
    assert sorted(p.name for p in (models_dir / ".downloads").iterdir()) == [f"{TF1_NAME}.lock"]


def test_archive_without_a_top_folder_becomes_the_model_folder(server, models_dir, tiny_frozen_dir):
    graph = (tiny_frozen_dir / "frozen_inference_graph.pb").read_bytes()
    server.files[f"/{TF1_NAME}.tar.gz"] = tar_gz({"frozen_inference_graph.pb": graph, "notes.txt": b"flat"})
    path = zoo.find_model(TF1_ALIAS, models_dir)
    assert path == models_dir / TF1_NAME
    assert sorted(p.name for p in path.iterdir()) == ["frozen_inference_graph.pb", "notes.txt"]
    assert (path / "frozen_inference_graph.pb").read_bytes() == graph
    assert sorted(p.name for p in models_dir.iterdir()) == [".downloads", TF1_NAME]  # no staging folder left


def test_what_a_killed_unpacking_left_is_removed_by_the_next_fetch(server, models_dir):
    killed = models_dir / f".{TF1_NAME}.k1ll3d_.part"  # atomic_directory's staging name for the model folder
    (killed / "half").mkdir(parents=True)
    another = models_dir / f".{TF2_NAME}.k1ll3d_.part"  # another model's: its own fetch cleans it
    another.mkdir()
    assert zoo.find_model(TF1_ALIAS, models_dir) == models_dir / TF1_NAME
    assert sorted(p.name for p in models_dir.iterdir()) == [".downloads", another.name, TF1_NAME]
    assert sorted(p.name for p in (models_dir / TF1_NAME).iterdir()) == ["frozen_inference_graph.pb"]


# --- two processes at once -------------------------------------------------------------------------------------

def test_two_processes_fetching_at_once_download_once(server, models_dir, repo_root):
    """The second process waits on the lock while the first is mid-download, then finds the finished folder."""
    server.hold = threading.Event()
    env = {**os.environ, "PYTHONPATH": str(repo_root)}
    code = ("import sys; from object_detection_utils.models.zoo import find_model; "
            "print(find_model(sys.argv[1], sys.argv[2]))")
    command = [sys.executable, "-c", code, TF1_ALIAS, str(models_dir)]
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.request_seen.wait(timeout=60), "the first process never asked the server"
        second = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in second.stderr], daemon=True).start()
        assert lines.get(timeout=60) == f"waiting for another process fetching {TF1_NAME}\n"
        server.hold.set()  # now let the first download go on
        first_out, first_err = first.communicate(timeout=60)
        second_out, _ = second.communicate(timeout=60)
    finally:
        server.hold.set()
        for process in (first, locals().get("second")):
            if process is not None and process.poll() is None:
                process.kill()
    assert first.returncode == 0, first_err
    assert second.returncode == 0
    assert first_out.strip() == second_out.strip() == str(models_dir / TF1_NAME)
    assert len(server.archive_requests()) == 1
    assert is_model_folder(models_dir / TF1_NAME)


# --- --list-models ---------------------------------------------------------------------------------------------

def _listing(argv: list[str], capsys) -> dict[str, list[str]]:
    with pytest.raises(SystemExit) as exit_info:
        single_image.parse_args(argv)
    assert exit_info.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0].split()
    assert header[:2] == ["name", "alias"]
    return {line.split()[0]: line.split() for line in lines[1:-1]}


def test_list_models_tells_the_truth_about_the_cache(server, models_dir, capsys):
    rows = _listing(["--list-models", "--models-dir", str(models_dir)], capsys)
    assert list(rows) == list(catalogue.CATALOGUE)
    assert all(row[-2:] == ["no", "-"] for row in rows.values())
    assert rows[TF1_NAME][:9] == [TF1_NAME, TF1_ALIAS, "TF1", "graph", "masks", "79", "ms", "25", "-"]
    assert rows[TF2_NAME][2:9] == ["TF2", "saved", "masks", "301", "ms", "39.0", "34.6"]
    assert rows["faster_rcnn_resnet50_coco_2018_01_28"][4:6] == ["boxes", "only"]

    folder = zoo.find_model(TF1_ALIAS, models_dir)
    (models_dir / f"{TF2_NAME}.tar.gz").write_bytes(archive_of(server, TF2_NAME))
    capsys.readouterr()
    rows = _listing(["--models-dir", str(models_dir), "--list-models"], capsys)  # either order
    folder_size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert rows[TF1_NAME][-3:] == ["yes", *zoo.format_size(folder_size).split()]
    tf2_size = len(archive_of(server, TF2_NAME))
    assert rows[TF2_NAME][-3:] == ["archive", *zoo.format_size(tf2_size).split()]
    assert sum(row[-2:] == ["no", "-"] for row in rows.values()) == len(catalogue.CATALOGUE) - 2


def test_list_models_needs_no_network_and_leaves_other_parsing_alone(models_dir, capsys, no_network):
    parser = argparse.ArgumentParser()
    cli.add_model_arguments(parser)
    with pytest.raises(SystemExit) as exit_info:
        cli.parse_args(parser, ["--list-models", "--models-dir", str(models_dir)])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1].startswith(f"models folder: {models_dir} ")
    assert cli.parse_args(parser, ["--min-score", "0.7"]).min_score == 0.7  # otherwise parsing is unchanged


def test_format_size():
    assert [zoo.format_size(n) for n in (0, 999, 1000, 1_234_567, 5_000_000_000)] == [
        "0 B", "999 B", "1.0 kB", "1.2 MB", "5.0 GB"]
