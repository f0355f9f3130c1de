import { Link } from "react-router-dom";
import { useQuery } from "@tanstack/react-query";
import * as api from "../api";
import { StatusBadge, statusText } from "../components/Status";
import { DateTime, Relative } from "../components/Time";
import { Empty, ErrorBox, Loading } from "../components/Feedback";
import { shortId, useJobNames } from "../lib/useJobNames";

/** The alerts sent for the caller's jobs and how each delivery went. */
export function AlertsPage() {
  const names = useJobNames();
  const q = useQuery({ queryKey: ["alerts"], queryFn: () => api.listAlerts({ limit: 100 }), refetchInterval: 2000 });
  const alerts = q.data?.alerts ?? [];
  return (
    <>
      <h1>Alerts</h1>
      <p className="muted">What your jobs' notifications said, and whether each webhook got it.</p>
      <ErrorBox error={q.error} title="Could not load alerts" />
      {q.isPending ? (
        <Loading />
      ) : alerts.length === 0 ? (
        <Empty>
          <p>No alerts yet. A job with notifications sends one when a run fails, times out, dies, recovers or is missed.</p>
        </Empty>
      ) : (
        <div className="table-wrap">
          <table aria-label="Alerts" className="cardify">
            <thead>
              <tr>
                <th>When</th>
                <th>Kind</th>
                <th>Job</th>
                <th>Run</th>
                <th>Deliveries</th>
              </tr>
            </thead>
            <tbody>
              {alerts.map((a) => (
                <tr key={a.id}>
                  <td data-label="When" className="nowrap">
                    <DateTime value={a.created_at} withDate="auto" />
                    <div className="small muted">
                      <Relative value={a.created_at} />
                    </div>
                  </td>
                  <td data-label="Kind">
                    <StatusBadge status={a.kind} />
                    {typeof a.summary === "string" ? <div className="small muted wrap">{a.summary}</div> : null}
                  </td>
                  <td data-label="Job">
                    <Link to={`/jobs/${a.job_id}`}>{names.get(a.job_id) ?? shortId(a.job_id)}</Link>
                  </td>
                  <td data-label="Run">{a.execution_id ? <Link to={`/runs/${a.execution_id}`}>#{a.execution_id}</Link> : "—"}</td>
                  <td data-label="Deliveries">
                    {a.deliveries.length === 0 ? (
                      <span className="muted">none</span>
                    ) : (
                      <ul className="deliveries">
                        {a.deliveries.map((d, i) => (
                          <li key={i}>
                            <span className="mono break">{d.target}</span> <StatusBadge status={d.status} />{" "}
                            <span className="small muted">
                              {d.attempts} attempt{d.attempts === 1 ? "" : "s"}
                              {d.format ? `, ${d.format}` : ""}
                              {d.last_status_code ? `, HTTP ${d.last_status_code}` : ""}
                              {d.status === "pending" && d.next_attempt_at ? (
                                <>
                                  , next try <Relative value={d.next_attempt_at} />
                                </>
                              ) : null}
                            </span>
                            {d.last_error ? <div className="small tone-text-bad wrap">Last error: {d.last_error}</div> : null}
                          </li>
                        ))}
                      </ul>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <p className="small muted">Kinds: {["failed", "dead", "timed_out", "recovered", "missed"].map(statusText).join(", ")}.</p>
    </>
  );
}
