import type { ExecutionStatus, JobStatus } from "../api";

/** Words for a status ("timed_out" -> "timed out"). */
export const statusText = (s: string) => s.replace(/_/g, " ");

const TONES: Record<string, string> = {
  succeeded: "ok",
  failed: "bad",
  timed_out: "bad",
  lost: "bad",
  oom_killed: "bad",
  cancelled: "muted",
  skipped: "muted",
  running: "live",
  scheduled: "pending",
  active: "ok",
  paused: "warn",
  completed: "muted",
  deleted: "muted",
  delivered: "ok",
  pending: "pending",
};

/** The tone (colour family) of a status: ok, bad, warn, live, pending, muted. */
export const statusTone = (s: string | null | undefined) => (s ? TONES[s] ?? "muted" : "muted");

/** A run's colour, as the CSS variable of its status. */
export function statusColor(s: string): string {
  return `var(--st-${statusTone(s)})`;
}

/** A status as text plus colour (never colour alone). */
export function StatusBadge({ status }: { status: ExecutionStatus | JobStatus | string }) {
  return (
    <span className={`badge tone-${statusTone(status)}`} data-status={status}>
      {statusText(status)}
    </span>
  );
}
