import { useEffect, useMemo, useState } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { keepPreviousData, useInfiniteQuery, useQueryClient } from "@tanstack/react-query";
import * as api from "../api";
import type { Job } from "../api";
import { RunsStrip } from "../components/RunsStrip";
import { StatusBadge } from "../components/Status";
import { Relative, When } from "../components/Time";
import { Confirm } from "../components/Confirm";
import { Empty, ErrorBox, Loading } from "../components/Feedback";
import { isFailing, lastResult } from "../lib/runs";

const POLL = 2000;
const PAGE = 100;

function JobRow({ job, selected, onToggle }: { job: Job; selected: boolean; onToggle: () => void }) {
  const recent = job.recent_runs;
  const last = lastResult(recent);
  const running = recent?.find((r) => r.status === "running");
  const failing = isFailing({ recent_runs: recent });
  return (
    <tr className={[job.status === "paused" ? "row-paused" : "", failing ? "row-failing" : "", selected ? "row-selected" : ""].join(" ")}>
      <td className="check">
        <input type="checkbox" checked={selected} onChange={onToggle} aria-label={`Select ${job.name}`} />
      </td>
      <td className="name" data-label="Name">
        <Link to={`/jobs/${job.id}`}>{job.name}</Link>
        {job.image ? <div className="small muted mono">{job.image}</div> : null}
      </td>
      <td data-label="Schedule">
        {job.schedule ? (
          <>
            <code>{job.schedule}</code>
            {job.schedule_description ? <div className="small muted">{job.schedule_description}</div> : null}
            {job.run_once ? <div className="small muted">once</div> : null}
          </>
        ) : (
          <span className="muted">one-off</span>
        )}
      </td>
      <td className="nowrap" data-label="Timezone">{job.timezone || "UTC"}</td>
      <td className="nowrap" data-label="Next fire">
        {job.status === "active" ? <When value={job.next_run_at} withDate="auto" /> : <span className="muted">—</span>}
      </td>
      <td data-label="Status">
        <StatusBadge status={job.status} />
      </td>
      <td data-label="Last result">
        {running ? <StatusBadge status="running" /> : null}
        {last ? (
          <>
            {running ? " " : null}
            <Link to={`/runs/${last.id}`} className="plain">
              <StatusBadge status={last.status} />
            </Link>
            {last.exit_code !== undefined && last.exit_code !== null && last.exit_code !== 0 ? (
              <span className="small muted"> exit {last.exit_code}</span>
            ) : null}
            {last.finished_at ? (
              <div className="small muted">
                <Relative value={last.finished_at} />
              </div>
            ) : null}
          </>
        ) : running ? null : (
          <span className="muted">—</span>
        )}
      </td>
      <td data-label="Last 20 runs">
        {/* The server leaves recent_runs out when a job has none. */}
        <RunsStrip runs={recent ?? []} label={`Last runs of ${job.name}`} />
      </td>
    </tr>
  );
}

type Action = "run" | "pause" | "resume" | "delete";
const ACTIONS: Record<Action, { fn: (id: string) => Promise<unknown>; done: string }> = {
  run: { fn: api.runJob, done: "started" },
  pause: { fn: api.pauseJob, done: "paused" },
  resume: { fn: api.resumeJob, done: "resumed" },
  delete: { fn: api.deleteJob, done: "deleted" },
};

export function JobsPage() {
  const [params, setParams] = useSearchParams();
  const status = params.get("status") ?? "";
  const rawResult = params.get("result") ?? "";
  const result = rawResult === "failed" || rawResult === "succeeded" ? rawResult : "";
  const q = params.get("q") ?? "";
  const [search, setSearch] = useState(q);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<{ text: string; bad?: boolean } | null>(null);
  const qc = useQueryClient();

  // Search as you type, a moment after the last key.
  useEffect(() => {
    const t = setTimeout(() => {
      if (search !== q) update({ q: search });
    }, 300);
    return () => clearTimeout(t);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [search]);

  function update(change: Record<string, string>) {
    const next = new URLSearchParams(params);
    for (const [k, v] of Object.entries(change)) {
      if (v) next.set(k, v);
      else next.delete(k);
    }
    setParams(next, { replace: true });
  }

  const jobs = useInfiniteQuery({
    queryKey: ["jobs", { status, q, result }],
    queryFn: ({ pageParam }) =>
      api.listJobs({ status, q: q.trim(), result, recent: 20, limit: PAGE, page_token: pageParam || undefined }),
    initialPageParam: "",
    getNextPageParam: (last) => last.next_page_token || undefined,
    refetchInterval: POLL,
    // Keep the rows on screen while a new search or filter loads (no jumping).
    placeholderData: keepPreviousData,
  });

  // The server filters (q, status, result) and sends each job's last 20 runs.
  const shown = useMemo(() => jobs.data?.pages.flatMap((p) => p.jobs) ?? [], [jobs.data]);
  const filtered = !!(q || status || result);

  const selectedJobs = shown.filter((j) => selected.has(j.id));
  const allChecked = shown.length > 0 && selectedJobs.length === shown.length;

  function toggle(id: string) {
    setSelected((s) => {
      const n = new Set(s);
      if (n.has(id)) n.delete(id);
      else n.add(id);
      return n;
    });
  }

  async function act(action: Action) {
    const targets = selectedJobs;
    if (!targets.length) return;
    setBusy(true);
    setMessage(null);
    const results = await Promise.allSettled(targets.map((j) => ACTIONS[action].fn(j.id)));
    const failed = results
      .map((r, i) => (r.status === "rejected" ? `${targets[i].name}: ${(r.reason as Error).message}` : null))
      .filter(Boolean);
    const ok = targets.length - failed.length;
    setMessage({
      text: `${ok} job${ok === 1 ? "" : "s"} ${ACTIONS[action].done}.${failed.length ? ` Not done: ${failed.join("; ")}` : ""}`,
      bad: failed.length > 0,
    });
    if (action === "delete") setSelected(new Set());
    setBusy(false);
    setConfirming(false);
    await qc.invalidateQueries({ queryKey: ["jobs"] });
    qc.invalidateQueries({ queryKey: ["stats"] });
  }

  return (
    <>
      <div className="page-head">
        <h1>Jobs</h1>
        <Link to="/jobs/new" className="button primary">
          New job
        </Link>
      </div>

      <div className="filters" role="search">
        <div className="filter">
          <label htmlFor="jobs-q">Search by name</label>
          <input id="jobs-q" type="search" value={search} placeholder="name contains…" onChange={(e) => setSearch(e.target.value)} />
        </div>
        <div className="filter">
          <label htmlFor="jobs-status">Status</label>
          <select id="jobs-status" value={status} onChange={(e) => update({ status: e.target.value })}>
            <option value="">any</option>
            <option value="active">active</option>
            <option value="paused">paused</option>
            <option value="completed">completed</option>
          </select>
        </div>
        <div className="filter">
          <label htmlFor="jobs-result">Last result</label>
          <select id="jobs-result" value={result} onChange={(e) => update({ result: e.target.value })}>
            <option value="">any</option>
            <option value="failed">failed</option>
            <option value="succeeded">succeeded</option>
          </select>
        </div>
      </div>

      <div className="toolbar" aria-label="Selected jobs" role="toolbar">
        <span className="muted small">{selectedJobs.length ? `${selectedJobs.length} selected` : "Select jobs to act on them together"}</span>
        <button type="button" disabled={!selectedJobs.length || busy} onClick={() => act("run")}>
          Run now
        </button>
        <button type="button" disabled={!selectedJobs.length || busy} onClick={() => act("pause")}>
          Pause
        </button>
        <button type="button" disabled={!selectedJobs.length || busy} onClick={() => act("resume")}>
          Resume
        </button>
        <button type="button" className="danger" disabled={!selectedJobs.length || busy} onClick={() => setConfirming(true)}>
          Delete
        </button>
      </div>
      {message ? (
        <p className={message.bad ? "error-box" : "notice"} role="status">
          {message.text}
        </p>
      ) : null}

      <ErrorBox error={jobs.error} title="Could not load jobs" />
      {jobs.isPending ? (
        <Loading what="Loading jobs" />
      ) : shown.length === 0 ? (
        <Empty>
          {!filtered ? (
            <>
              <p>No jobs yet.</p>
              <Link to="/jobs/new" className="button primary">
                Create your first job
              </Link>
            </>
          ) : (
            <p>No job matches these filters.</p>
          )}
        </Empty>
      ) : (
        <div className="table-wrap">
          <table className="jobs cardify" aria-label="Jobs">
            <thead>
              <tr>
                <th className="check">
                  <input
                    type="checkbox"
                    aria-label="Select all jobs"
                    checked={allChecked}
                    onChange={() => setSelected(allChecked ? new Set() : new Set(shown.map((j) => j.id)))}
                  />
                </th>
                <th>Name</th>
                <th>Schedule</th>
                <th>Timezone</th>
                <th>Next fire</th>
                <th>Status</th>
                <th>Last result</th>
                <th>Last 20 runs</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((j) => (
                <JobRow key={j.id} job={j} selected={selected.has(j.id)} onToggle={() => toggle(j.id)} />
              ))}
            </tbody>
          </table>
        </div>
      )}
      {jobs.hasNextPage ? (
        <button type="button" onClick={() => jobs.fetchNextPage()} disabled={jobs.isFetchingNextPage}>
          Load more jobs
        </button>
      ) : null}

      {confirming ? (
        <Confirm
          title={`Delete ${selectedJobs.length} job${selectedJobs.length === 1 ? "" : "s"}?`}
          confirmLabel="Delete"
          busy={busy}
          onCancel={() => setConfirming(false)}
          onConfirm={() => act("delete")}
        >
          <p>They will not fire again: {selectedJobs.map((j) => j.name).join(", ")}.</p>
        </Confirm>
      ) : null}
    </>
  );
}
