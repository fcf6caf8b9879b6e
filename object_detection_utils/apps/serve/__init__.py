"""The segmentation server (instance_segmentation_server.py): a model behind HTTP, a page to try it, Ray Serve.

    app.py         the routes: /v1/segment, TF Serving's /v1/models/..., health, metrics, the page
    batching.py    the model's queue: bounded, pictures of one size stacked into one model call
    uploads.py     reading a request's picture: size limit, timeout, multipart or raw body
    answers.py     Detections as JSON, masks as COCO RLE, polygons or PNG
    tf_serving.py  TF Serving's REST formats for zoo detection models
    metrics.py     Prometheus counters and histograms
    http_errors.py errors as one JSON line with a status
    ray_serve.py   the same app as a Ray Serve deployment
    command.py     the command line
"""
