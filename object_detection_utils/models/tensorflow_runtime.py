"""TensorFlow, imported once and quietly: what every module that runs a TensorFlow graph calls first."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import tempfile


@contextlib.contextmanager
def native_stderr_silenced():
    """Hide what TensorFlow's C++ side prints to fd 2 while it starts (absl and CUDA probing chatter).

    That output bypasses Python's logging and would bury our one-line errors. If start-up fails, what it
    printed is replayed so nothing useful is lost.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


@functools.cache
def import_tensorflow():
    """TensorFlow, imported on first use (it takes seconds) with GPUs set to allocate memory as needed.

    TensorFlow's C++ side logs straight to fd 2, not only at import but whenever it likes, e.g. at the first
    run of a graph ("E tensorflow/core/util/util.cc:131] oneDNN supports DT_BOOL only on platforms with
    AVX-512"). Level 3 of TF_CPP_MIN_LOG_LEVEL keeps INFO, WARNING and ERROR lines out of a normal run: a real
    failure still reaches us as a Python exception with its message, and FATAL lines still print. A level the
    user set wins (TF_CPP_MIN_LOG_LEVEL=0 shows everything); TensorFlow reads it once, so it is set here,
    just before the import, and not when the package is imported.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with native_stderr_silenced():
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised: memory growth can only be set before first use
            pass
    return tf
