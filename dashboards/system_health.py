"""System health: processes and hosts, runtime, data stores, Celery and the telemetry pipeline."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from dashboards.common import (
    RATE,
    about,
    add_rows,
    graph,
    links,
    new_dashboard,
    quantile,
    rate_sum,
    ratio,
    sel,
    single,
    target,
)

UID = "otel-obs-system-health"
INSTANCE = ("service_name", "instance")
INSTANCE_LEGEND = "{{service_name}} {{instance}}"
REDIS = 'db_system="redis"'
IDLE = 'state="idle"'
USED = 'state="used"'
TASKS = "celery_task_outcomes_total"
TASK_FAILED = 'celery_task_outcome="failure"'
SIGNALS = (("spans", "spans"), ("metric_points", "metric points"), ("log_records", "log records"))
# Signals exported through a sending queue (traces to Tempo, logs to Loki); metrics are pulled.
QUEUED_SIGNALS = ("spans", "log_records")

ABOUT = """\
**Are the machines, the runtime, the data stores, the workers and the telemetry pipeline
healthy?** CPU, memory, disk and network per service instance, Python garbage collection,
Redis latency and the connection pool, Celery queue depth and task times, and the
Collector's accepted, refused and dropped items and export queues. Instances are processes
(one per container in a containerised deployment).
"""


def _uptime() -> str:
    # service.instance.id is new for each process, so the age of an instance's target_info
    # series is the process uptime (counted up to one day back).
    instances = (
        'target_info{telemetry_sdk_name!="", job=~"(.+/)?($service)", '
        'deployment_environment_name=~"$environment"}'
    )
    return f"max by (job, instance) (time() - min_over_time(timestamp({instances})[1d:15s]))"


def _collector(metric: str, legend: str, by: str = "") -> object:
    grouping = f" by ({by})" if by else ""
    return target(f"sum{grouping} (rate({metric}[{RATE}]))", legend)


def overview() -> list[object]:
    return [
        about(ABOUT),
        single(
            "Instances reporting",
            "Service instances that sent telemetry in the last five minutes.",
            "short",
            'count(max by (job, instance) (target_info{telemetry_sdk_name!="", '
            'job=~"(.+/)?($service)", deployment_environment_name=~"$environment"}))',
            links(),
            width=6,
        ),
        single(
            "Process uptime (youngest)",
            "Time since the most recently started instance started; a low value means a restart.",
            "s",
            f"min({_uptime()})",
            links(),
            width=6,
        ),
        single(
            "Collector uptime",
            "Time since the Collector process started.",
            "s",
            "max(otelcol_process_uptime)",
            links(),
            width=6,
        ),
        single(
            "Collector refused + dropped",
            "Items per second the Collector refused at its receivers or could not queue to export.",
            "short",
            " + ".join(
                f"(sum(rate({metric}[{RATE}])) or vector(0))"
                for metric in [f"otelcol_receiver_refused_{name}" for name, _ in SIGNALS]
                + [f"otelcol_exporter_enqueue_failed_{name}" for name in QUEUED_SIGNALS]
            ),
            links(),
            width=6,
        ),
    ]


def compute() -> list[object]:
    return [
        graph(
            "Process CPU",
            "CPU used by each instance's process, in cores (1 = one core fully busy).",
            "short",
            [target(rate_sum("process_cpu_time_seconds_total", INSTANCE), INSTANCE_LEGEND)],
            links(),
        ),
        graph(
            "Host CPU utilization",
            "Share of the host's CPU time not idle, as seen by each instance.",
            "percentunit",
            [
                target(
                    "1 - avg by (service_name, instance) "
                    f"(system_cpu_utilization_ratio{sel(IDLE)})",
                    INSTANCE_LEGEND,
                )
            ],
            links(),
        ),
        graph(
            "Process memory (RSS)",
            "Resident memory of each instance's process.",
            "bytes",
            [
                target(
                    f"sum by (service_name, instance) (process_memory_usage_bytes{sel()})",
                    INSTANCE_LEGEND,
                )
            ],
            links(),
        ),
        graph(
            "Host memory used",
            "Share of the host's memory in use, as seen by each instance.",
            "percentunit",
            [
                target(
                    f"avg by (service_name, instance) (system_memory_utilization_ratio{sel(USED)})",
                    INSTANCE_LEGEND,
                )
            ],
            links(),
        ),
        graph(
            "Container resources: threads and open files",
            "Threads and open file descriptors of each instance's process (its container).",
            "short",
            [
                target(
                    f"sum by (service_name, instance) (process_thread_count{sel()})",
                    "threads " + INSTANCE_LEGEND,
                ),
                target(
                    f"sum by (service_name, instance) (process_open_file_descriptor_count{sel()})",
                    "files " + INSTANCE_LEGEND,
                ),
            ],
            links(),
        ),
        graph(
            "Container resources: virtual memory",
            "Virtual memory reserved by each instance's process.",
            "bytes",
            [
                target(
                    f"sum by (service_name, instance) (process_memory_virtual_bytes{sel()})",
                    INSTANCE_LEGEND,
                )
            ],
            links(),
        ),
    ]


def runtime() -> list[object]:
    return [
        graph(
            "Garbage collections by generation",
            "Python garbage collector runs per second, by generation.",
            "ops",
            [
                target(
                    rate_sum("cpython_gc_collections_total", ("service_name", "generation")),
                    "{{service_name}} gen {{generation}}",
                )
            ],
            links(),
        ),
        graph(
            "Objects collected",
            "Objects freed by the Python garbage collector per second.",
            "short",
            [
                target(
                    rate_sum("cpython_gc_collected_objects_total", ("service_name",)),
                    "{{service_name}}",
                )
            ],
            links(),
        ),
    ]


def disk_and_network() -> list[object]:
    direction = ("service_name", "instance", "direction")
    legend = INSTANCE_LEGEND + " {{direction}}"
    return [
        graph(
            "Disk I/O",
            "Bytes per second read and written on the host's disks, as seen by each instance.",
            "Bps",
            [target(rate_sum("system_disk_io_bytes_total", direction), legend)],
            links(),
        ),
        graph(
            "Process disk I/O",
            "Bytes per second each instance's process read and wrote.",
            "Bps",
            [target(rate_sum("process_disk_io_bytes_total", direction), legend)],
            links(),
        ),
        graph(
            "Network I/O",
            "Bytes per second sent and received on the host's network interfaces, loopback aside.",
            "Bps",
            [target(rate_sum("system_network_io_bytes_total", direction, 'device!="lo"'), legend)],
            links(),
        ),
        graph(
            "Network errors and drops",
            "Packets per second in error or dropped on the host's interfaces.",
            "pps",
            [
                target(rate_sum("system_network_errors_total", direction), "errors " + legend),
                target(
                    rate_sum("system_network_dropped_packets_total", direction), "dropped " + legend
                ),
            ],
            links(),
        ),
    ]


def data_stores() -> list[object]:
    command = ("service_name", "db_operation_name")
    return [
        graph(
            "Redis command latency p95",
            "95th percentile of Redis command duration seen by the clients, by command.",
            "s",
            [
                target(
                    quantile(0.95, "db_client_operation_duration_seconds", command, REDIS),
                    "{{service_name}} {{db_operation_name}}",
                    exemplar=True,
                )
            ],
            links('span.db.system="redis"'),
        ),
        graph(
            "Redis commands per second",
            "Redis commands sent by the clients, by command.",
            "ops",
            [
                target(
                    rate_sum("db_client_operation_duration_seconds_count", command, REDIS),
                    "{{service_name}} {{db_operation_name}}",
                )
            ],
            links('span.db.system="redis"'),
        ),
        graph(
            "Connection pools: used and idle",
            "Connections of each client pool, by state; used near the pool's size means waiting.",
            "short",
            [
                target(
                    "sum by (service_name, db_system, db_client_connection_state) "
                    f"(db_client_connection_count{sel()})",
                    "{{service_name}} {{db_system}} {{db_client_connection_state}}",
                )
            ],
            links(),
        ),
    ]


def celery() -> list[object]:
    task = ("service_name", "celery_task_name")
    return [
        graph(
            "Queue depth",
            "Tasks waiting in each Celery queue.",
            "short",
            [
                target(
                    f"sum by (messaging_destination_name) (celery_queue_depth{sel()})",
                    "{{messaging_destination_name}}",
                )
            ],
            links(),
        ),
        graph(
            "Tasks per second by outcome",
            "Finished tasks per second: success, failure, retry.",
            "ops",
            [target(rate_sum(TASKS, ("celery_task_outcome",)), "{{celery_task_outcome}}")],
            links("status = error"),
            stacked=True,
        ),
        graph(
            "Task failure ratio by task",
            "Share of each task's runs that failed.",
            "percentunit",
            [
                target(
                    ratio(rate_sum(TASKS, task, TASK_FAILED), rate_sum(TASKS, task)),
                    "{{celery_task_name}}",
                )
            ],
            links('span.celery.task.name="${__field.labels.celery_task_name}" && status = error'),
        ),
        graph(
            "Task processing time p95",
            "95th percentile of task run time, by task; dots are exemplar traces.",
            "s",
            [
                target(
                    quantile(0.95, "celery_task_duration_seconds", task),
                    "{{celery_task_name}}",
                    exemplar=True,
                )
            ],
            links('span.celery.task.name="${__field.labels.celery_task_name}"'),
        ),
        graph(
            "Queue wait p95",
            "95th percentile of the time tasks waited in the queue before a worker took them.",
            "s",
            [
                target(
                    quantile(0.95, "celery_task_queue_wait_seconds", task),
                    "{{celery_task_name}}",
                    exemplar=True,
                )
            ],
            links('span.celery.task.name="${__field.labels.celery_task_name}"'),
        ),
    ]


def collector() -> list[object]:
    return [
        graph(
            "Collector: accepted items",
            "Items per second the Collector's receivers accepted, by signal.",
            "short",
            [_collector(f"otelcol_receiver_accepted_{name}", label) for name, label in SIGNALS],
            links(),
        ),
        graph(
            "Collector: refused items",
            "Items per second the receivers refused (memory limit reached or export queue full).",
            "short",
            [_collector(f"otelcol_receiver_refused_{name}", label) for name, label in SIGNALS],
            links(),
        ),
        graph(
            "Collector: dropped items",
            "Items per second lost: not queued for export (queue full) or dropped by a processor.",
            "short",
            [
                target(
                    f"sum by (exporter) (rate(otelcol_exporter_enqueue_failed_{name}[{RATE}]))",
                    f"{label} not queued by {{{{exporter}}}}",
                )
                for name, label in SIGNALS
                if name in QUEUED_SIGNALS
            ]
            + [
                target(
                    f"sum by (processor) (rate(otelcol_processor_incoming_items[{RATE}])) - "
                    f"sum by (processor) (rate(otelcol_processor_outgoing_items[{RATE}]))",
                    "dropped by {{processor}}",
                ),
            ],
            links(),
            # The failure counters exist only once something failed: no series means none.
            no_value="0",
        ),
        graph(
            "Collector: export queue fill",
            "Share of each exporter's sending queue in use; near 100% data starts to be refused.",
            "percentunit",
            [
                target(
                    "max by (exporter) "
                    "(otelcol_exporter_queue_size / otelcol_exporter_queue_capacity)",
                    "{{exporter}}",
                )
            ],
            links(),
        ),
        graph(
            "Collector: memory",
            "Resident memory of the Collector process.",
            "bytes",
            [target("max by (instance) (otelcol_process_memory_rss)", "{{instance}}")],
            links(),
        ),
        graph(
            "Instance uptime",
            "Time since each service instance's process started (counted up to one day back).",
            "s",
            [target(_uptime(), "{{job}} {{instance}}")],
            links(),
        ),
    ]


def build() -> db.Dashboard:
    dashboard = new_dashboard(
        "otel-obs / System health",
        UID,
        "Hosts, processes, runtime, Redis, Celery and the Collector.",
        ["system", "health"],
    )
    return add_rows(
        dashboard,
        [
            ("Overview", overview()),
            ("CPU, memory and containers", compute()),
            ("Python runtime", runtime()),
            ("Disk and network", disk_and_network()),
            ("Redis and connection pools", data_stores()),
            ("Celery", celery()),
            ("Telemetry pipeline (Collector)", collector()),
        ],
    )
