"""The resource every signal carries: service, deployment, host, process and container.

The SDK's detectors do the detecting; the SDK also gives each process, forked or not, its
own ``service.instance.id`` (a forked child's process attributes are renewed by ``_fork``).
What is added here is the container id, read from the cgroup and mount tables when the
process runs in one. User values from
``OTEL_RESOURCE_ATTRIBUTES`` and ``OTEL_SERVICE_NAME`` win over everything detected.
"""

from __future__ import annotations

import os
import re

from opentelemetry.sdk.resources import (
    OsResourceDetector,
    ProcessResourceDetector,
    Resource,
    ResourceDetector,
    get_aggregated_resources,
)

from otel_obs import semconv
from otel_obs.config import Settings
from otel_obs.version import __version__

_CONTAINER_ID = re.compile(r"(?<![0-9a-f])([0-9a-f]{64})(?![0-9a-f])")
_CONTAINER_SOURCES = ("/proc/self/cgroup", "/proc/self/mountinfo")


class ContainerResourceDetector(ResourceDetector):
    """Detects ``container.id`` from the 64-hex id the runtime puts in cgroup paths."""

    def detect(self) -> Resource:
        for path in _CONTAINER_SOURCES:
            try:
                with open(path, encoding="utf-8") as handle:
                    for line in handle:
                        if path.endswith("mountinfo") and "/containers/" not in line:
                            continue
                        match = _CONTAINER_ID.search(line)
                        if match:
                            return Resource({"container.id": match.group(1)})
            except OSError:
                continue
        return Resource({})


def _host_detector() -> ResourceDetector:
    from opentelemetry.sdk import resources

    return resources._HostResourceDetector()  # the SDK registers it only as an entry point


def process_identity() -> Resource:
    """The attributes that change in a forked child, as the child sees them."""
    return Resource({"process.pid": os.getpid(), "process.parent_pid": os.getppid()})


def build_resource(settings: Settings) -> Resource:
    """Return the detected resource with the user's attributes merged on top."""
    detected = get_aggregated_resources(
        [
            _host_detector(),
            OsResourceDetector(),
            ProcessResourceDetector(),
            ContainerResourceDetector(),
        ],
        timeout=2,
    )
    ours = {
        "telemetry.distro.name": "otel-obs",
        "telemetry.distro.version": __version__,
        "deployment.environment.name": settings.environment or "development",
        "service.version": settings.service_version or "unknown",
    }
    user = Resource.create({}, schema_url=semconv.SCHEMA_URL)
    return detected.merge(Resource(ours)).merge(user)
