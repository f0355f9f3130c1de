"""What the OpenAPI document says each body and reply is.

The routes read bodies through the project's own codec (``cronfleet.codec``:
its errors name the field, and a PATCH tells an absent field from a null),
so these pydantic models only describe; nothing is parsed or serialised
through them. ``tests/unit/test_openapi.py`` holds them to the codec
(the examples decode, real replies validate) and the schemathesis test to the
running gateway. Bounds here are the server's (``cronfleet.models``).

Its modules, each name importable from ``gateway.http.schemas`` as before:
``common`` (literals, field kinds, a strict body, the error reply), ``auth``
(accounts), ``jobs`` (jobs, backfill, preview), ``executions`` (executions,
dead letters, alerts), ``reports`` (stats, cluster, health).
"""

from gateway.http.schemas.auth import (
    LoginBody,
    LoginReply,
    NewUser,
    NotifyTarget,
    ProfileBody,
    SignupBody,
    UserReply,
    WebhookSecretReply,
)
from gateway.http.schemas.common import (
    LIMIT_DOC,
    ErrorDetail,
    ErrorReply,
    ExecutionStatus,
    FailureClass,
    NotifyEvent,
    Status,
    Strict,
)
from gateway.http.schemas.executions import (
    AlertPage,
    AlertReply,
    DeadLetterPage,
    DeadLetterReply,
    DeliveryReply,
    ExecutionPage,
    ExecutionReply,
    ExecutionsReply,
    StepResultReply,
)
from gateway.http.schemas.jobs import (
    BackfillBody,
    HttpSpec,
    JobBody,
    JobFields,
    JobPage,
    JobReply,
    JobsFile,
    JobsReply,
    PreviewBody,
    PreviewReply,
    ResourcesSpec,
    RetrySpec,
    RunBriefReply,
    StepSpec,
    UpstreamSpec,
)
from gateway.http.schemas.reports import (
    ClusterReply,
    HealthReply,
    RunsInMinuteReply,
    SchedulerReply,
    Spread,
    StatsReply,
    WorkerReply,
)

__all__ = [
    "ErrorDetail",
    "ErrorReply",
    "ExecutionStatus",
    "FailureClass",
    "LIMIT_DOC",
    "NotifyEvent",
    "Status",
    "Strict",
    "LoginBody",
    "LoginReply",
    "NewUser",
    "NotifyTarget",
    "ProfileBody",
    "SignupBody",
    "UserReply",
    "WebhookSecretReply",
    "BackfillBody",
    "HttpSpec",
    "JobBody",
    "JobFields",
    "JobPage",
    "JobReply",
    "JobsFile",
    "JobsReply",
    "PreviewBody",
    "PreviewReply",
    "ResourcesSpec",
    "RetrySpec",
    "RunBriefReply",
    "StepSpec",
    "UpstreamSpec",
    "AlertPage",
    "AlertReply",
    "DeadLetterPage",
    "DeadLetterReply",
    "DeliveryReply",
    "ExecutionPage",
    "ExecutionReply",
    "ExecutionsReply",
    "StepResultReply",
    "ClusterReply",
    "HealthReply",
    "RunsInMinuteReply",
    "SchedulerReply",
    "Spread",
    "StatsReply",
    "WorkerReply",
]
