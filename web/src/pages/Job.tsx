import { useState } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { useInfiniteQuery, useQuery, useQueryClient } from "@tanstack/react-query";
import * as api from "../api";
import type { Execution, Job } from "../api";
import { StatusBadge } from "../components/Status";
import { DateTime, When } from "../components/Time";
import { Confirm } from "../components/Confirm";
import { Empty, ErrorBox, Loading } from "../components/Feedback";
import { RunsChart } from "../components/Charts";
import { between, browserTimeZone, formatDuration, offsetMs, useNow, zoneLabel } from "../lib/time";
import { isLive } from "../lib/runs";

const POLL = 2000;

function pct(v: number | null | undefined) {
  return v === null || v === undefined ? "—" : `${(v * 100).toFixed(v === 1 || v === 0 ? 0 : 1)}%`;
}

function Pcts({ p }: { p: api.Percentiles }) {
  return (
    <span className="pcts">
      <span>p50 {formatDuration(p.p50)}</span>
      <span>p95 {formatDuration(p.p95)}</span>
      <span>p99 {formatDuration(p.p99)}</span>
      {typeof p.max === "number" ? <span>max {formatDuration(p.max)}</span> : null}
    </span>
  );
}

/** A run's duration; a running one counts up. */
export function RunDuration({ e }: { e: Execution }) {
  const now = useNow();
  if (e.status === "running" && e.started_at) return <>{formatDuration(now - new Date(e.started_at).getTime())}…</>;
  return <>{formatDuration(between(e.started_at, e.finished_at))}</>;
}

/** Whether the job's zone and the browser's show different wall times at `at`. */
function offsetDiffers(timeZone: string | undefined, at: string): boolean {
  try {
    const d = new Date(at);
    return offsetMs(d, timeZone || "UTC") !== offsetMs(d, browserTimeZone());
  } catch {
    return false;
  }
}

function Spec({ job, names }: { job: Job; names: Map<string, string> }) {
  const rows: [string, React.ReactNode][] = [];
  const add = (k: string, v: React.ReactNode, when = true) => when && rows.push([k, v]);
  if (job.steps?.length)
    add(
      "Steps",
      <ol className="steps-list">
        {job.steps.map((s, i) => (
          <li key={i}>
            <strong>{s.name}</strong> <code>{s.run}</code>
          </li>
        ))}
      </ol>,
    );
  add("Command", <code className="block">{job.command}</code>, !!job.command);
  add(
    "HTTP call",
    <code>
      {job.http?.method ?? "GET"} {job.http?.url}
    </code>,
    !!job.http,
  );
  add(
    "Schedule",
    job.schedule ? (
      <>
        <code>{job.schedule}</code>
        {job.schedule_description ? <span className="muted"> · {job.schedule_description}</span> : null}
        {job.run_once ? <span className="muted"> · once</span> : null}
      </>
    ) : (
      <span>one-off</span>
    ),
  );
  add("Timezone", job.timezone || "UTC");
  add(
    "Next fire",
    <>
      <When value={job.next_run_at} timeZone={job.timezone} />
      {job.next_run_at && offsetDiffers(job.timezone, job.next_run_at) ? (
        <div className="small muted">
          <DateTime value={job.next_run_at} /> your time
        </div>
      ) : null}
    </>,
    job.status === "active",
  );
  add("Run at", <DateTime value={job.run_at} timeZone={job.timezone} />, !!job.run_at);
  add(
    "Window",
    <>
      {job.start_at ? <DateTime value={job.start_at} timeZone={job.timezone} /> : "…"} to{" "}
      {job.end_at ? <DateTime value={job.end_at} timeZone={job.timezone} /> : "…"}
    </>,
    !!(job.start_at || job.end_at),
  );
  add("Misfire policy", job.misfire_policy);
  add("Image", <code>{job.image}</code>, !!job.image);
  add("Container", job.container);
  add("Timeout", formatDuration((job.timeout_seconds ?? 0) * 1000), job.timeout_seconds !== undefined);
  add("Priority", job.priority);
  add(
    "Concurrency",
    <>
      {job.concurrency_policy}
      {job.max_concurrency ? `, at most ${job.max_concurrency} at once` : ""}
    </>,
  );
  add("Delivery", job.delivery?.replace(/_/g, " "), !!job.delivery);
  add(
    "Resources",
    [
      job.resources?.cpus !== undefined ? `${job.resources.cpus} CPUs` : null,
      job.resources?.memory_mb !== undefined ? `${job.resources.memory_mb} MB memory` : null,
      job.resources?.pids !== undefined ? `${job.resources.pids} processes` : null,
    ]
      .filter(Boolean)
      .join(", "),
    !!job.resources && Object.keys(job.resources).length > 0,
  );
  add(
    "Environment",
    <ul className="plain-list mono">
      {Object.entries(job.env ?? {}).map(([k, v]) => (
        <li key={k}>
          {k}={typeof v === "object" && v !== null ? `${v.value} (secret)` : String(v)}
        </li>
      ))}
    </ul>,
    Object.keys(job.env ?? {}).length > 0,
  );
  const r = job.retry;
  add(
    "Retries",
    <>
      {job.max_retries ? `up to ${job.max_retries}` : "none"}
      {r
        ? [
            r.backoff_seconds !== undefined ? `, backoff ${r.backoff_seconds} s` : "",
            r.multiplier !== undefined ? ` ×${r.multiplier}` : "",
            r.max_backoff_seconds !== undefined ? ` up to ${r.max_backoff_seconds} s` : "",
            r.jitter !== undefined ? `, jitter ${r.jitter}` : "",
            r.on?.length ? `; on ${r.on.join(", ")}` : "",
            r.never_exit_codes?.length ? `; never for exit ${r.never_exit_codes.join(", ")}` : "",
          ].join("")
        : ""}
    </>,
  );
  add(
    "Notifications",
    <ul className="plain-list">
      {(job.notify ?? []).map((n, i) => (
        <li key={i}>
          <span className="mono break">{n.webhook}</span> <span className="muted">({n.format ?? "json"}) on {(n.on ?? []).join(", ")}</span>
        </li>
      ))}
    </ul>,
    !!job.notify?.length,
  );
  add(
    "After",
    <ul className="plain-list">
      {(job.after ?? []).map((a, i) => (
        <li key={i}>
          <Link to={`/jobs/${a.job_id}`}>{names.get(a.job_id) ?? a.job_id}</Link> <span className="muted">on {a.on}</span>
        </li>
      ))}
    </ul>,
    !!job.after?.length,
  );
  add("Created", <DateTime value={job.created_at} />);
  add("Updated", <DateTime value={job.updated_at} />);
  add("Id", <code className="small">{job.id}</code>);
  return (
    <dl className="spec">
      {rows.map(([k, v]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>{v}</dd>
        </div>
      ))}
    </dl>
  );
}

export function RunHistory({ executions }: { executions: Execution[] }) {
  const zone = zoneLabel();
  return (
    <div className="table-wrap">
      <table aria-label="Run history" className="runs">
        <thead>
          <tr>
            <th>Run</th>
            <th>Status</th>
            <th>Attempt</th>
            <th>Trigger</th>
            <th>Scheduled ({zone})</th>
            <th>Started ({zone})</th>
            <th className="num">Lateness</th>
            <th className="num">Duration</th>
            <th>Worker</th>
            <th className="num">Exit code</th>
          </tr>
        </thead>
        <tbody>
          {executions.map((e) => (
            <tr key={e.id}>
              <td>
                <Link to={`/runs/${e.id}`}>#{e.id}</Link>
              </td>
              <td>
                <StatusBadge status={e.status} />
              </td>
              <td>{e.attempt}</td>
              <td>{e.trigger ?? "—"}</td>
              <td className="nowrap">
                <DateTime value={e.scheduled_at} withZone={false} withDate="auto" />
              </td>
              <td className="nowrap">
                <DateTime value={e.started_at} withZone={false} withDate="auto" />
              </td>
              <td className="num">{formatDuration(e.lateness_ms)}</td>
              <td className="num">
                <RunDuration e={e} />
              </td>
              <td>{e.worker_id ?? "—"}</td>
              <td className="num">{e.exit_code ?? "—"}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function JobPage() {
  const { id = "" } = useParams();
  const navigate = useNavigate();
  const qc = useQueryClient();
  const [confirm, setConfirm] = useState(false);
  const [note, setNote] = useState<React.ReactNode>(null);
  const [actionError, setActionError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const job = useQuery({ queryKey: ["job", id], queryFn: () => api.getJob(id), refetchInterval: POLL });
  const runs = useInfiniteQuery({
    queryKey: ["job-executions", id],
    queryFn: ({ pageParam }) => api.jobExecutions(id, { limit: 25, page_token: pageParam || undefined }),
    initialPageParam: "",
    getNextPageParam: (last) => last.next_page_token || undefined,
    refetchInterval: POLL,
  });
  // As often as the history while runs come (the job fires, or one runs now), so the two agree.
  const busyJob =
    job.data?.status === "active" || !!runs.data?.pages[0]?.executions.some((e) => isLive(e.status));
  const stats = useQuery({
    queryKey: ["job-stats", id],
    queryFn: () => api.jobStats(id),
    refetchInterval: busyJob ? POLL : 10_000,
  });
  const jobs = useQuery({ queryKey: ["jobs", "all-names"], queryFn: () => api.listJobs({ limit: 500 }), staleTime: 10_000 });
  const names = new Map((jobs.data?.jobs ?? []).map((j) => [j.id, j.name]));

  async function act(fn: () => Promise<unknown>, after?: (r: unknown) => void) {
    setBusy(true);
    setActionError(null);
    setNote(null);
    try {
      const r = await fn();
      after?.(r);
      await Promise.all([
        qc.invalidateQueries({ queryKey: ["job", id] }),
        qc.invalidateQueries({ queryKey: ["job-executions", id] }),
        qc.invalidateQueries({ queryKey: ["job-stats", id] }),
        qc.invalidateQueries({ queryKey: ["jobs"] }),
      ]);
    } catch (e) {
      setActionError(e);
    } finally {
      setBusy(false);
    }
  }

  if (job.isPending) return <Loading what="Loading the job" />;
  if (job.error)
    return (
      <>
        <h1>Job</h1>
        <ErrorBox error={job.error} title="Could not load the job" />
        <Link to="/jobs">All jobs</Link>
      </>
    );
  const j = job.data;
  const executions = runs.data?.pages.flatMap((p) => p.executions) ?? [];
  const s = stats.data;
  const deleted = j.status === "deleted";

  return (
    <>
      <p className="crumbs">
        <Link to="/jobs">Jobs</Link> /
      </p>
      <div className="page-head">
        <h1>
          {j.name} <StatusBadge status={j.status} />
        </h1>
        <div className="actions">
          <button type="button" className="primary" disabled={busy || deleted} onClick={() =>
            act(() => api.runJob(id), (r) => {
              const e = r as Execution;
              setNote(<>Started <Link to={`/runs/${e.id}`}>run #{e.id}</Link>.</>);
            })}>
            Run now
          </button>
          {j.status === "paused" ? (
            <button type="button" disabled={busy} onClick={() => act(() => api.resumeJob(id))}>
              Resume
            </button>
          ) : (
            <button type="button" disabled={busy || j.status !== "active"} onClick={() => act(() => api.pauseJob(id))}>
              Pause
            </button>
          )}
          <Link to={`/jobs/${id}/edit`} className={`button${deleted ? " disabled" : ""}`} aria-disabled={deleted || undefined}>
            Edit
          </Link>
          <button type="button" className="danger" disabled={busy || deleted} onClick={() => setConfirm(true)}>
            Delete
          </button>
        </div>
      </div>
      {note ? <p className="notice" role="status">{note}</p> : null}
      <ErrorBox error={actionError} title="Not done" />
      {j.warnings?.length ? (
        <ul className="warnings">
          {j.warnings.map((w) => (
            <li key={w}>{w}</li>
          ))}
        </ul>
      ) : null}

      <div className="two-col">
        <section className="card" aria-labelledby="spec-h">
          <h2 id="spec-h">Definition</h2>
          <Spec job={j} names={names} />
        </section>
        <section className="card" aria-labelledby="stats-h">
          <h2 id="stats-h">Last day</h2>
          <ErrorBox error={stats.error} />
          {s ? (
            <dl className="kv">
              <div>
                <dt>Success rate</dt>
                <dd className="big-num">{s.runs ? pct(s.success_rate) : "—"}</dd>
              </div>
              <div>
                <dt>Runs</dt>
                <dd>
                  {s.runs} ({s.succeeded} succeeded, {s.failed} failed)
                </dd>
              </div>
              <div>
                <dt>Duration</dt>
                <dd>
                  <Pcts p={s.duration_ms} />
                </dd>
              </div>
              <div>
                <dt>Lateness</dt>
                <dd>
                  <Pcts p={s.lateness_ms} />
                </dd>
              </div>
            </dl>
          ) : (
            <Loading what="Loading stats" />
          )}
        </section>
      </div>

      <section className="card" aria-labelledby="chart-h">
        <h2 id="chart-h">Lateness and duration per run</h2>
        <RunsChart executions={executions} />
      </section>

      <section aria-labelledby="runs-h">
        <h2 id="runs-h">
          Run history {executions.some((e) => isLive(e.status)) ? <span className="live-dot" title="a run is in progress" /> : null}
        </h2>
        <ErrorBox error={runs.error} />
        {runs.isPending ? (
          <Loading what="Loading runs" />
        ) : executions.length === 0 ? (
          <Empty>
            <p>No runs yet{j.next_run_at && j.status === "active" ? "; the next one is due soon" : ""}.</p>
          </Empty>
        ) : (
          <RunHistory executions={executions} />
        )}
        {runs.hasNextPage ? (
          <button type="button" onClick={() => runs.fetchNextPage()} disabled={runs.isFetchingNextPage}>
            Load older runs
          </button>
        ) : null}
      </section>

      {confirm ? (
        <Confirm
          title={`Delete ${j.name}?`}
          confirmLabel="Delete"
          busy={busy}
          onCancel={() => setConfirm(false)}
          onConfirm={() =>
            act(
              () => api.deleteJob(id),
              () => {
                setConfirm(false);
                navigate("/jobs");
              },
            )
          }
        >
          <p>It will not fire again. Its past runs stay readable.</p>
        </Confirm>
      ) : null}
    </>
  );
}
