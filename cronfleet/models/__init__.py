"""The records every role shares about a job: its spec (and each rule of it)
and the stored job. What happens to it (executions, dead letters, alerts,
stats) and users are in ``cronfleet.records``.

They are typed, frozen and transport-free. ``cronfleet.codec`` turns them
into API JSON, protobuf messages and Postgres rows and back; a new job field
is a field here (a field of :class:`JobSpec` in ``spec``, with its rule in
:meth:`JobSpec.validate`), a field in the proto, and a column only if SQL
reads it.

Its modules, each name importable from ``cronfleet.models`` as before:
``spec`` (:class:`JobSpec` and its validation), ``parts`` (what a spec is
made of: steps, resources, the retry policy, upstreams, an HTTP call, notify
targets, each with its rule), ``job`` (the stored :class:`Job`),
``secret`` (secret env values), ``bounds`` (the size of everything a job
holds, and the checks that name the field), ``vocabulary`` (statuses,
policies, failure classes, triggers, notify events).
"""

from cronfleet.models.bounds import (
    EARLIEST_YEAR,
    LATEST_YEAR,
    MAX_BACKOFF_SECONDS,
    MAX_COMMAND_BYTES,
    MAX_CONCURRENCY,
    MAX_CPUS,
    MAX_ENV_NAME,
    MAX_ENV_VALUE,
    MAX_ENV_VARS,
    MAX_EXIT_CODES,
    MAX_HEADER_NAME,
    MAX_HEADER_VALUE,
    MAX_HEADERS,
    MAX_IMAGE,
    MAX_LIST,
    MAX_MEMORY_MB,
    MAX_MULTIPLIER,
    MAX_NAME,
    MAX_NOTIFY_TARGETS,
    MAX_PIDS,
    MAX_SCHEDULE,
    MAX_STEPS,
    MAX_TIMEOUT_SECONDS,
    MAX_TIMEZONE,
    MAX_URL,
    check_moment,
    check_text,
    storable,
)
from cronfleet.models.job import (
    Job,
    RunBrief,
)
from cronfleet.models.parts import (
    HttpCall,
    Notify,
    Resources,
    RetryPolicy,
    Step,
    Upstream,
    is_slack_webhook,
    name_steps,
    validate_notify,
)
from cronfleet.models.secret import (
    MASK,
    EnvValue,
    Secret,
    reveal_env,
    secret_names,
)
from cronfleet.models.spec import (
    JobSpec,
)
from cronfleet.models.vocabulary import (
    CONCURRENCY_POLICIES,
    CONTAINER_MODES,
    DELIVERY_GUARANTEES,
    EXECUTION_STATUSES,
    FAILURE_CLASSES,
    FINAL_STATUSES,
    HTTP_METHODS,
    JOB_STATUSES,
    MISFIRE_POLICIES,
    NOTIFY_EVENTS,
    NOTIFY_FORMATS,
    TRIGGERS,
    UPSTREAM_OUTCOMES,
)

__all__ = [
    "CONCURRENCY_POLICIES",
    "CONTAINER_MODES",
    "DELIVERY_GUARANTEES",
    "EXECUTION_STATUSES",
    "FAILURE_CLASSES",
    "FINAL_STATUSES",
    "HTTP_METHODS",
    "JOB_STATUSES",
    "MISFIRE_POLICIES",
    "NOTIFY_EVENTS",
    "NOTIFY_FORMATS",
    "TRIGGERS",
    "UPSTREAM_OUTCOMES",
    "EARLIEST_YEAR",
    "LATEST_YEAR",
    "MAX_BACKOFF_SECONDS",
    "MAX_COMMAND_BYTES",
    "MAX_CONCURRENCY",
    "MAX_CPUS",
    "MAX_ENV_NAME",
    "MAX_ENV_VALUE",
    "MAX_ENV_VARS",
    "MAX_EXIT_CODES",
    "MAX_HEADERS",
    "MAX_HEADER_NAME",
    "MAX_HEADER_VALUE",
    "MAX_IMAGE",
    "MAX_LIST",
    "MAX_MEMORY_MB",
    "MAX_MULTIPLIER",
    "MAX_NAME",
    "MAX_NOTIFY_TARGETS",
    "MAX_PIDS",
    "MAX_SCHEDULE",
    "MAX_STEPS",
    "MAX_TIMEOUT_SECONDS",
    "MAX_TIMEZONE",
    "MAX_URL",
    "check_moment",
    "check_text",
    "storable",
    "EnvValue",
    "MASK",
    "Secret",
    "reveal_env",
    "secret_names",
    "HttpCall",
    "Notify",
    "Resources",
    "RetryPolicy",
    "Step",
    "Upstream",
    "is_slack_webhook",
    "name_steps",
    "validate_notify",
    "JobSpec",
    "Job",
    "RunBrief",
]
