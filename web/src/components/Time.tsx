import { formatDateTime, formatRelative, useNow } from "../lib/time";

/** A time as the reader's clock shows it, the UTC instant in the tooltip. */
export function DateTime({ value, timeZone, withZone }: { value?: string | null; timeZone?: string; withZone?: boolean }) {
  if (!value) return <span className="muted">—</span>;
  return (
    <time dateTime={value} title={`${value} (UTC)`}>
      {formatDateTime(value, { timeZone, withZone })}
    </time>
  );
}

/** "in 12 s" / "3 min ago", ticking every second. */
export function Relative({ value }: { value?: string | null }) {
  const now = useNow();
  if (!value) return null;
  return (
    <time dateTime={value} title={formatDateTime(value, { withZone: true })} className="relative">
      {formatRelative(value, now)}
    </time>
  );
}

/** Both: "04:29:20 · in 12 s". */
export function When({ value, timeZone, withZone }: { value?: string | null; timeZone?: string; withZone?: boolean }) {
  if (!value) return <span className="muted">—</span>;
  return (
    <span className="when">
      <DateTime value={value} timeZone={timeZone} withZone={withZone} />
      <span className="small muted">
        {" "}
        <Relative value={value} />
      </span>
    </span>
  );
}
