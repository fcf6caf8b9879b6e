"""Serve a model over HTTP: a JSON API, TF Serving's REST API, health checks, Prometheus metrics and a page to try it.

    python instance_segmentation_server.py --model ../shared/models/shapes-r18-128
    curl -F image=@photo.jpg http://127.0.0.1:8501/v1/segment          # or open http://127.0.0.1:8501/
    python instance_segmentation_server.py --ray --max-replicas 4        # the same app on Ray Serve

It listens on 127.0.0.1 only unless --host says otherwise; with --token-file (or $INSTANCE_SEGMENTATION_TOKEN) every
route but /healthz, /readyz and the page needs `Authorization: Bearer <token>`. See docs/SERVE.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ...errors import InstanceSegmentationError
from ...predictor import SegmenterSpec
from .. import cli

TOKEN_VARIABLE = "INSTANCE_SEGMENTATION_TOKEN"
INSTALL_HINT = 'the server needs its extra: pip install "instance-segmentation[serve]" (or pip install -e ".[serve]")'


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    server = parser.add_argument_group("server")
    server.add_argument("--host", default="127.0.0.1",
                        help="address to listen on; 0.0.0.0 exposes the server to the network (default: %(default)s)")
    server.add_argument("--port", type=int, default=8501, help="port (default: %(default)s, TF Serving's REST port)")
    server.add_argument("--token-file", type=Path, default=None,
                        help=f"a file holding the bearer token the API needs (default: ${TOKEN_VARIABLE} if set, "
                             "else no token)")
    server.add_argument("--name", default=None,
                        help="the model's name in TF Serving's URLs /v1/models/NAME (default: the model's own)")
    server.add_argument("--max-upload-mb", type=float, default=20.0,
                        help="largest request body accepted, in MiB (default: %(default)s)")
    server.add_argument("--timeout", type=float, default=30.0,
                        help="seconds a request may take, upload included, before 408/504 (default: %(default)s)")
    server.add_argument("--queue-size", type=int, default=32,
                        help="pictures that may wait for the model; more are answered 503 (default: %(default)s)")
    server.add_argument("--max-batch", type=int, default=8,
                        help="most waiting pictures of one size run in one model call, for models that take "
                             "batches (default: %(default)s)")
    ray = parser.add_argument_group("Ray Serve")
    ray.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                     help="serve on Ray Serve: join the cluster at ADDRESS (auto, host:6379), or start a local Ray")
    ray.add_argument("--replicas", type=int, default=1, help="model replicas (default: %(default)s)")
    ray.add_argument("--min-replicas", type=int, default=None,
                     help="autoscale from this many replicas (with --max-replicas)")
    ray.add_argument("--max-replicas", type=int, default=None, help="autoscale up to this many replicas")
    ray.add_argument("--replica-cpus", type=float, default=1.0,
                     help="logical CPUs Ray reserves for each replica (default: %(default)s)")
    cli.add_picture_arguments(parser)
    cli.add_model_arguments(parser)
    return cli.parse_args(parser, argv)


def read_token(token_file: Path | None) -> str | None:
    """The bearer token from --token-file, else from $INSTANCE_SEGMENTATION_TOKEN, else None (no token)."""
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise InstanceSegmentationError(f"{token_file}: cannot read the token file ({error.strerror})") from None
        if not token:
            raise InstanceSegmentationError(f"{token_file}: the token file is empty")
        return token
    return os.environ.get(TOKEN_VARIABLE, "").strip() or None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import uvicorn

        from .app import ServerSettings, create_app
    except ImportError:
        raise InstanceSegmentationError(INSTALL_HINT) from None
    settings = ServerSettings(max_upload_bytes=int(args.max_upload_mb * 2**20), max_pixels=args.max_pixels,
                              timeout=args.timeout, queue_size=args.queue_size, max_batch=args.max_batch,
                              token=read_token(args.token_file), name=args.name)
    spec = SegmenterSpec.from_args(args)
    if args.ray is not None:
        from .ray_serve import ReplicaOptions, serve_forever

        replicas = ReplicaOptions(args.replicas, args.min_replicas, args.max_replicas, args.replica_cpus)
        return serve_forever(spec, settings, replicas, args.ray or None, args.host, args.port)
    segmenter = spec.load()  # a bad model or class fails here, before the port is taken
    app = create_app(segmenter, settings)
    print(f"serving {segmenter.name} on http://{args.host}:{args.port}/ (token: {'yes' if settings.token else 'no'})",
          file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False, server_header=False,
                timeout_keep_alive=5)
    return 0


def run() -> None:
    sys.exit(cli.run_main(main))


if __name__ == "__main__":
    run()
