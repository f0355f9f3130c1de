import { formatDateTime, formatRelative, useNow } from "../lib/time";

interface TimeProps {
  value?: string | null;
  /** The zone to show it in (default: the browser's). */
  timeZone?: string;
  /** Name the zone after the time ("06:01:32 GMT+1"); on unless a table header names it once. */
  withZone?: boolean;
  /** "auto": drop the date for today and the year for this year (tables). */
  withDate?: boolean | "auto";
}

/** A time in a zone, labelled with it; the UTC instant in the tooltip. */
export function DateTime({ value, timeZone, withZone = true, withDate }: TimeProps) {
  if (!value) return <span className="muted">—</span>;
  return (
    <time dateTime={value} title={`${formatDateTime(value, { timeZone, withZone: true })} · ${value}`}>
      {formatDateTime(value, { timeZone, withZone, withDate })}
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

/** Both: "04:29:20 GMT+1 · in 12 s". */
export function When(props: TimeProps) {
  if (!props.value) return <span className="muted">—</span>;
  return (
    <span className="when">
      <DateTime {...props} />
      <span className="small muted">
        {" "}
        <Relative value={props.value} />
      </span>
    </span>
  );
}
