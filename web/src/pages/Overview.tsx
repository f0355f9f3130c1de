import { Link } from "react-router-dom";
import { useQuery } from "@tanstack/react-query";
import * as api from "../api";
import type { ExecutionStatus } from "../api";
import { StatusBadge, statusTone } from "../components/Status";
import { ErrorBox, Loading } from "../components/Feedback";
import { RunsPerMinuteChart } from "../components/Charts";
import { formatDuration } from "../lib/time";

const EXEC_ORDER: ExecutionStatus[] = ["succeeded", "failed", "timed_out", "lost", "cancelled", "skipped", "running", "scheduled"];
const FAIL_LIKE = new Set(["failed", "timed_out", "lost"]);

function pct(v: number | null | undefined) {
  return v === null || v === undefined ? "—" : `${(v * 100).toFixed(v === 1 || v === 0 ? 0 : 1)}%`;
}

function ByStatus({ counts, label }: { counts: Partial<Record<string, number>>; label: string }) {
  const keys = [...EXEC_ORDER.filter((k) => counts[k] !== undefined), ...Object.keys(counts).filter((k) => !EXEC_ORDER.includes(k as ExecutionStatus))];
  if (!keys.length) return <p className="muted small">No runs.</p>;
  return (
    <ul className="counts" aria-label={label}>
      {keys.map((k) => {
        const n = counts[k] ?? 0;
        const inner = (
          <>
            <span className="count">{n}</span> <StatusBadge status={k} />
          </>
        );
        return (
          <li key={k} className={`tone-border-${statusTone(k)}`}>
            {FAIL_LIKE.has(k) && n > 0 ? (
              <Link to="/jobs?result=failed" className="plain" title="Jobs whose last run failed">
                {inner}
              </Link>
            ) : (
              inner
            )}
          </li>
        );
      })}
    </ul>
  );
}

export function OverviewPage() {
  const q = useQuery({ queryKey: ["stats"], queryFn: api.getStats, refetchInterval: 2000 });
  if (q.isPending) return <Loading what="Loading the overview" />;
  if (q.error)
    return (
      <>
        <h1>Overview</h1>
        <ErrorBox error={q.error} title="Could not load stats" />
      </>
    );
  const s = q.data;
  const jobs = s.jobs ?? {};
  const failedHour = ["failed", "timed_out", "lost"].reduce((n, k) => n + (s.executions?.last_hour?.[k as ExecutionStatus] ?? 0), 0);
  const failedDay = ["failed", "timed_out", "lost"].reduce((n, k) => n + (s.executions?.last_day?.[k as ExecutionStatus] ?? 0), 0);
  const totalJobs = Object.values(jobs).reduce((a, b) => a + (b ?? 0), 0);
  return (
    <>
      <div className="page-head">
        <h1>Overview</h1>
        <Link to="/jobs/new" className="button primary">
          New job
        </Link>
      </div>
      <div className="cards">
        <div className="card stat">
          <div className="label">Jobs</div>
          <div className="big-num">{totalJobs}</div>
          <div className="small">
            {(["active", "paused", "completed"] as const).map((k) => (
              <span key={k} className="inline-stat">
                <Link to={`/jobs?status=${k}`}>
                  {jobs[k] ?? 0} {k}
                </Link>
              </span>
            ))}
          </div>
        </div>
        <div className="card stat">
          <div className="label">Success rate</div>
          <div className="big-num">{pct(s.success_rate)}</div>
          <div className="small muted">last day · last hour {pct(s.success_rate_last_hour)}</div>
        </div>
        <div className={`card stat${failedDay ? " alarm" : ""}`}>
          <div className="label">Failed runs</div>
          <div className="big-num">
            <Link
              to="/jobs?result=failed"
              className={failedDay ? "tone-text-bad" : undefined}
              aria-label={`${failedDay} failed runs in the last day: show the failing jobs`}
            >
              {failedDay}
            </Link>
          </div>
          <div className="small muted">
            last day · {failedHour} in the last hour · <Link to="/jobs?result=failed">failing jobs</Link>
          </div>
        </div>
        <div className="card stat">
          <div className="label">Lateness</div>
          <div className="pcts big">
            <span>p50 {formatDuration(s.lateness_ms?.p50)}</span>
            <span>p95 {formatDuration(s.lateness_ms?.p95)}</span>
            <span>p99 {formatDuration(s.lateness_ms?.p99)}</span>
          </div>
          <div className="small muted">
            duration p50 {formatDuration(s.duration_ms?.p50)} · p95 {formatDuration(s.duration_ms?.p95)}
            {typeof s.duration_ms?.max === "number" ? <> · max {formatDuration(s.duration_ms.max)}</> : null}
          </div>
        </div>
      </div>

      <section className="card" aria-labelledby="rpm-h">
        <h2 id="rpm-h">Runs per minute, last hour</h2>
        <RunsPerMinuteChart data={s.runs_per_minute ?? []} />
      </section>

      <div className="two-col">
        <section className="card" aria-labelledby="hour-h">
          <h2 id="hour-h">Runs in the last hour</h2>
          <ByStatus counts={s.executions?.last_hour ?? {}} label="Runs in the last hour by status" />
        </section>
        <section className="card" aria-labelledby="day-h">
          <h2 id="day-h">Runs in the last day</h2>
          <ByStatus counts={s.executions?.last_day ?? {}} label="Runs in the last day by status" />
        </section>
      </div>
    </>
  );
}
