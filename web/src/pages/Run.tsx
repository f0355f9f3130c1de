import { useEffect, useLayoutEffect, useRef, useState } from "react";
import { Link, useParams } from "react-router-dom";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import * as api from "../api";
import type { Execution } from "../api";
import { StatusBadge } from "../components/Status";
import { DateTime } from "../components/Time";
import { ErrorBox, Loading } from "../components/Feedback";
import { formatDuration } from "../lib/time";
import { isLive } from "../lib/runs";
import { RunDuration } from "./Job";

/**
 * The console output: followed live (fetch + ReadableStream) when the run is
 * scheduled or running as the page opens, read whole otherwise. A followed
 * stream is left to end by itself (the server ends it when the run ends).
 */
export function useConsole(id: string, exec: Execution | undefined, onEnd?: () => void) {
  const [text, setText] = useState("");
  const [live, setLive] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [mode, setMode] = useState<"follow" | "whole" | null>(null);
  const onEndRef = useRef(onEnd);
  onEndRef.current = onEnd;

  // Decide once per run, when it is first known; a run seen running later
  // (it was scheduled) switches to following.
  useEffect(() => {
    if (!exec) return;
    if (mode === null) setMode(isLive(exec.status) ? "follow" : "whole");
  }, [exec, mode]);
  useEffect(() => setMode(null), [id]);

  useEffect(() => {
    if (!mode) return;
    const ctl = new AbortController();
    setText("");
    setError(null);
    if (mode === "whole") {
      api.executionLogs(id, ctl.signal).then(setText, (e) => !ctl.signal.aborted && setError(e));
    } else {
      setLive(true);
      api
        .followExecutionLogs(id, (chunk) => setText((t) => t + chunk), ctl.signal)
        .then(
          () => onEndRef.current?.(),
          async (e) => {
            if (ctl.signal.aborted) return;
            // The stream broke: show what is stored instead.
            try {
              setText(await api.executionLogs(id, ctl.signal));
            } catch {
              setError(e);
            }
          },
        )
        .finally(() => !ctl.signal.aborted && setLive(false));
    }
    return () => ctl.abort();
  }, [id, mode]);
  return { text, live, error };
}

function ConsoleOutput({ text, live, ended }: { text: string; live: boolean; ended: boolean }) {
  const ref = useRef<HTMLPreElement>(null);
  const stick = useRef(true);
  useLayoutEffect(() => {
    const el = ref.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, [text]);
  return (
    <pre
      ref={ref}
      className="console"
      aria-label="Console output"
      aria-live={live ? "polite" : undefined}
      aria-busy={live || undefined}
      tabIndex={0}
      onScroll={(e) => {
        const el = e.currentTarget;
        stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
      }}
    >
      {text || (live ? "Waiting for output…" : ended ? "(no output)" : "")}
    </pre>
  );
}

/** The stored log: a gateway logs route needs the bearer header, so it is fetched and saved as a file. */
function StoredLog({ exec }: { exec: Execution }) {
  const [err, setErr] = useState<unknown>(null);
  if (exec.log_removed_at)
    return (
      <span>
        Removed <DateTime value={exec.log_removed_at} />{" "}
        <span className="small muted">(your stored logs passed the log quota; the oldest are removed first)</span>
      </span>
    );
  if (!exec.log_url) return <span className="muted">—</span>;
  // A run that printed nothing stores nothing (its link reads as empty).
  if (exec.log_bytes === 0) return <span className="muted">Nothing printed, so nothing stored</span>;
  let viaGateway = false;
  try {
    const u = new URL(exec.log_url, window.location.href);
    viaGateway = u.pathname.startsWith(api.API_BASE + "/");
  } catch {
    /* not a URL */
  }
  if (!viaGateway)
    return (
      <a href={exec.log_url} target="_blank" rel="noreferrer">
        Open the stored log
      </a>
    );
  async function download() {
    setErr(null);
    try {
      const text = await api.executionLogs(exec.id);
      const url = URL.createObjectURL(new Blob([text], { type: "text/plain" }));
      const a = document.createElement("a");
      a.href = url;
      a.download = `run-${exec.id}.log`;
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (e) {
      setErr(e);
    }
  }
  return (
    <span>
      <button type="button" className="link" onClick={download}>
        Download the stored log
      </button>{" "}
      <span className="small muted">(as a file: the link itself needs your token)</span>
      <ErrorBox error={err} />
    </span>
  );
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(1)} GiB`;
}

const KNOWN = new Set([
  "id", "job_id", "attempt", "status", "trigger", "scheduled_at", "run_at", "started_at", "finished_at",
  "exit_code", "worker_id", "log_url", "error", "lateness_ms", "cold_start", "steps", "checkpoint",
  "log_bytes", "log_removed_at",
]);

export function RunPage() {
  const { id = "" } = useParams();
  const qc = useQueryClient();
  const [cancelError, setCancelError] = useState<unknown>(null);
  const [cancelling, setCancelling] = useState(false);
  const exec = useQuery({
    queryKey: ["execution", id],
    queryFn: () => api.getExecution(id),
    refetchInterval: (q) => (isLive(q.state.data?.status) ? 1000 : false),
  });
  const e = exec.data;
  const job = useQuery({ queryKey: ["job", e?.job_id], queryFn: () => api.getJob(e!.job_id), enabled: !!e?.job_id, retry: false });
  const out = useConsole(id, e, () => qc.invalidateQueries({ queryKey: ["execution", id] }));

  async function cancel() {
    setCancelling(true);
    setCancelError(null);
    try {
      await api.cancelExecution(id);
      await qc.invalidateQueries({ queryKey: ["execution", id] });
    } catch (err) {
      setCancelError(err);
    } finally {
      setCancelling(false);
    }
  }

  if (exec.isPending) return <Loading what="Loading the run" />;
  if (exec.error)
    return (
      <>
        <h1>Run #{id}</h1>
        <ErrorBox error={exec.error} title="Could not load the run" />
      </>
    );
  const x = exec.data;
  const jobName = job.data?.name;
  const specSteps = job.data?.steps ?? [];
  const ranSteps = x.steps ?? [];
  const stepRows = specSteps.length
    ? specSteps.map((s, i) => ({ name: s.name, run: s.run, result: ranSteps.find((r) => r.name === s.name) ?? ranSteps[i] }))
    : ranSteps.map((r) => ({ name: r.name, run: undefined as string | undefined, result: r }));
  const extra = Object.entries(x).filter(([k, v]) => !KNOWN.has(k) && v !== null && v !== undefined);

  const rows: [string, React.ReactNode][] = [
    ["Status", <StatusBadge status={x.status} />],
    ["Job", <Link to={`/jobs/${x.job_id}`}>{jobName ?? x.job_id}</Link>],
    ["Attempt", x.attempt],
    ["Trigger", x.trigger ?? "—"],
    ["Scheduled", <DateTime value={x.scheduled_at} withZone />],
    ["Released", <DateTime value={x.run_at} withZone />],
    ["Started", <DateTime value={x.started_at} withZone />],
    ["Finished", <DateTime value={x.finished_at} withZone />],
    ["Duration", <RunDuration e={x} />],
    ["Lateness", formatDuration(x.lateness_ms)],
    ["Exit code", x.exit_code ?? "—"],
    ["Worker", x.worker_id ?? "—"],
    ["Cold start", x.cold_start === undefined || x.cold_start === null ? "—" : x.cold_start ? "yes" : "no"],
    ["Checkpoint", x.checkpoint ? <code className="break">{String(x.checkpoint)}</code> : "—"],
    ["Stored log", <StoredLog exec={x} />],
    ["Log size", x.log_bytes === undefined || x.log_bytes === null ? "—" : formatBytes(x.log_bytes)],
    ...extra.map(([k, v]) => [k.replace(/_/g, " "), typeof v === "object" ? <code>{JSON.stringify(v)}</code> : String(v)] as [string, React.ReactNode]),
  ];

  return (
    <>
      <p className="crumbs">
        <Link to="/jobs">Jobs</Link> / <Link to={`/jobs/${x.job_id}`}>{jobName ?? "job"}</Link> /
      </p>
      <div className="page-head">
        <h1>
          Run #{x.id} <StatusBadge status={x.status} />
        </h1>
        <div className="actions">
          {isLive(x.status) ? (
            <button type="button" className="danger" onClick={cancel} disabled={cancelling}>
              Cancel run
            </button>
          ) : null}
        </div>
      </div>
      {x.error ? (
        <p className={`error-box${x.status === "succeeded" ? " soft" : ""}`}>
          <strong>Error: </strong>
          {x.error}
        </p>
      ) : null}
      <ErrorBox error={cancelError} title="Not cancelled" />

      <section>
        <h2 id="console-h">
          Console output {out.live ? <span className="live-dot" title="streaming live" /> : null}
          {out.live ? <span className="small muted"> streaming live</span> : null}
        </h2>
        <ErrorBox error={out.error} title="Could not read the output" />
        <ConsoleOutput text={out.text} live={out.live} ended={!isLive(x.status)} />
      </section>

      <div className="two-col">
        <section className="card" aria-labelledby="run-h">
          <h2 id="run-h">Details</h2>
          <dl className="spec">
            {rows.map(([k, v]) => (
              <div key={k}>
                <dt>{k}</dt>
                <dd>{v}</dd>
              </div>
            ))}
          </dl>
        </section>
        <section className="card" aria-labelledby="steps-h">
          <h2 id="steps-h">Steps</h2>
          {stepRows.length === 0 ? (
            <p className="muted">One command, no steps.</p>
          ) : (
            <div className="table-wrap">
              <table aria-label="Steps">
                <thead>
                  <tr>
                    <th>Step</th>
                    <th className="num">Exit code</th>
                    <th className="num">Duration</th>
                  </tr>
                </thead>
                <tbody>
                  {stepRows.map((s, i) => (
                    <tr key={i}>
                      <td>
                        <strong>{s.name}</strong>
                        {s.run ? <div className="small muted mono">{s.run}</div> : null}
                      </td>
                      <td className="num">
                        {s.result ? (
                          <span className={s.result.exit_code === 0 ? "tone-text-ok" : "tone-text-bad"}>{s.result.exit_code ?? "—"}</span>
                        ) : (
                          <span className="muted">{isLive(x.status) ? "…" : "not run"}</span>
                        )}
                      </td>
                      <td className="num">{s.result ? formatDuration(s.result.duration_ms) : "—"}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </section>
      </div>


    </>
  );
}
