import type { Execution, Job, RecentRun } from "../api";

export const FINISHED = new Set(["succeeded", "failed", "timed_out", "cancelled", "lost", "skipped"]);
export const FAILING = new Set(["failed", "timed_out", "lost"]);
export const isLive = (s?: string | null) => s === "running" || s === "scheduled";

export const toRecent = (e: Execution): RecentRun => ({
  id: e.id,
  status: e.status,
  scheduled_at: e.scheduled_at ?? undefined,
  exit_code: e.exit_code,
});

/** The newest run that has ended (not scheduled, not running), if any. */
export function lastResult(runs: RecentRun[] | undefined): RecentRun | undefined {
  return runs?.find((r) => r.status !== "scheduled" && r.status !== "running");
}

/** A job whose newest ended run failed, timed out or was lost. */
export function isFailing(job: Pick<Job, "recent_runs">): boolean {
  const last = lastResult(job.recent_runs);
  return !!last && FAILING.has(last.status);
}
