import type { Job, RecentRun } from "../api";

export const FINISHED = new Set(["succeeded", "failed", "timed_out", "cancelled", "lost", "skipped"]);
export const FAILING = new Set(["failed", "timed_out", "lost"]);
/** The ends that say how the job did; a cancelled or skipped run says nothing about it. */
export const OUTCOMES = new Set(["succeeded", "failed", "timed_out", "lost"]);
export const isLive = (s?: string | null) => s === "running" || s === "scheduled";

/**
 * The newest run that ended with an outcome (succeeded, failed, timed out,
 * lost), if any: not a scheduled or running one, and not a cancelled or
 * skipped one (a pause withdraws a claimed run as cancelled).
 */
export function lastResult(runs: RecentRun[] | undefined): RecentRun | undefined {
  return runs?.find((r) => OUTCOMES.has(r.status));
}

/** A job whose last result failed, timed out or was lost. */
export function isFailing(job: Pick<Job, "recent_runs">): boolean {
  const last = lastResult(job.recent_runs);
  return !!last && FAILING.has(last.status);
}
