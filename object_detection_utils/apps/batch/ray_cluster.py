"""Ray for the batch job: joining or starting a cluster with its usage statistics off, and how many model actors
the cluster has room for."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from ...errors import InstanceSegmentationError

INSTALL_HINT = 'the --ray option needs Ray: pip install "instance-segmentation[ray]" (or pip install -e ".[ray]")'
# Decoding and writing are light next to the model: two such tasks per logical CPU (the model actors take one
# each). Asking for another amount than the actors also keeps Ray Data from fusing decoding into the actors, where
# it would stall the model.
TASK_CPUS = 0.5


def connect(address: str | None = None, num_cpus: int | None = None) -> None:
    """Join the Ray cluster at `address` (`auto`, `ray://host:10001`, `host:6379`), or `RAY_ADDRESS`, or start a
    local one (with `num_cpus` logical CPUs, default all). Ray's usage statistics are switched off, always, for
    Ray and the processes it starts; the caller's environment is left as it was. Does nothing when Ray is already
    initialised in this process."""
    with _environment(RAY_USAGE_STATS_ENABLED="0"):  # read by ray.init and the processes it starts
        try:
            import ray
            import ray.data  # the data extra
        except ImportError:
            raise InstanceSegmentationError(INSTALL_HINT) from None
        if ray.is_initialized():
            return
        local = address is None and not os.environ.get("RAY_ADDRESS")
        try:  # "local" starts a new instance, where None would join a cluster that `ray start` left on this machine
            ray.init(address="local" if local else address, num_cpus=num_cpus if local else None,
                     include_dashboard=False if local else None, logging_level="WARNING")
        except ConnectionError as error:
            raise InstanceSegmentationError(
                f"cannot join the Ray cluster at {address or os.environ.get('RAY_ADDRESS')}: {error}") from None


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    """These environment variables set for the block, then as they were."""
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def default_actors() -> int:
    """One model actor per GPU of the cluster, else one per node that has a CPU to spare for decoding and
    writing besides the actor's (TensorFlow uses all of a node's cores)."""
    import ray

    gpus = int(ray.cluster_resources().get("GPU", 0))
    return gpus or max(1, sum(1 for node in ray.nodes() if node["Alive"] and node["Resources"].get("CPU", 0) >= 2))


def check_room(actors: int) -> None:
    """Each model actor holds one logical CPU: some must be left for the decoding and writing tasks, or the job
    would wait forever."""
    import ray

    cpus = ray.cluster_resources().get("CPU", 0)
    if cpus - actors < TASK_CPUS:
        raise InstanceSegmentationError(
            f"{actors} model actor(s) take all {cpus:g} CPUs of the Ray cluster, leaving none to decode and write "
            "pictures: use fewer --ray-actors, or give the nodes more CPUs (ray start --num-cpus)")
