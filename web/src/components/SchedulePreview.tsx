import { useEffect, useState } from "react";
import { useQuery } from "@tanstack/react-query";
import * as api from "../api";
import type { Preview } from "../api";
import { browserTimeZone, formatDateTime, formatRelative, useNow } from "../lib/time";

/** `value`, once it has stayed the same for `ms`. */
export function useDebounced<T>(value: T, ms = 400): T {
  const [v, setV] = useState(value);
  useEffect(() => {
    const t = setTimeout(() => setV(value), ms);
    return () => clearTimeout(t);
  }, [value, ms]);
  return v;
}

/**
 * Ask the server what a schedule means as it is typed (debounced): its next
 * five fires, a description and warnings. A 422 comes back as `error` (an
 * ApiError naming the field), shown under the Schedule field by the caller.
 */
export function useSchedulePreview(schedule: string, timezone: string, ms = 400) {
  const s = useDebounced(schedule.trim(), ms);
  const tz = useDebounced(timezone.trim(), ms);
  const q = useQuery({
    queryKey: ["preview", s, tz],
    queryFn: ({ signal }) => api.previewSchedule({ schedule: s, timezone: tz || undefined, count: 5 }, signal),
    enabled: s !== "",
    retry: false,
    staleTime: 30_000,
  });
  const settled = s === schedule.trim() && tz === timezone.trim();
  return {
    schedule: s,
    timezone: tz || "UTC",
    data: s ? q.data : undefined,
    error: s ? (q.error as api.ApiError | Error | null) : null,
    pending: !!schedule.trim() && (!settled || q.isFetching),
  };
}

function validZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** The preview's region: description, warnings, and the next fires in the job's zone and the browser's. */
export function SchedulePreviewView({
  preview,
  timezone,
  pending,
  failed,
  localZone = browserTimeZone(),
  empty,
}: {
  preview?: Preview;
  timezone: string;
  pending?: boolean;
  failed?: boolean;
  localZone?: string;
  empty?: React.ReactNode;
}) {
  const now = useNow();
  const jobZone = validZone(timezone) ? timezone : "UTC";
  const sameZone = jobZone === localZone;
  return (
    <section className="preview" aria-label="Schedule preview" aria-live="polite" aria-busy={pending || undefined}>
      {!preview ? (
        <p className="muted small">{failed ? "No preview: see the message under Schedule." : pending ? "Working out the next fires…" : empty ?? "Type a schedule to see when it fires."}</p>
      ) : (
        <>
          {preview.description ? (
            <p className="description">
              <strong>{preview.description}</strong>
            </p>
          ) : null}
          {preview.warnings?.length ? (
            <ul className="warnings" aria-label="Warnings">
              {preview.warnings.map((w) => (
                <li key={w}>{w}</li>
              ))}
            </ul>
          ) : null}
          {preview.next.length ? (
            <div className="fires-wrap">
            <table className="fires" aria-label="Next fires">
              <thead>
                <tr>
                  <th scope="col">#</th>
                  <th scope="col">
                    Job's zone <span className="zone">{jobZone}</span>
                  </th>
                  {sameZone ? null : (
                    <th scope="col">
                      Your zone <span className="zone">{localZone}</span>
                    </th>
                  )}
                  <th scope="col">When</th>
                </tr>
              </thead>
              <tbody>
                {preview.next.map((t, i) => (
                  <tr key={t}>
                    <td className="muted">{i + 1}</td>
                    <td>{formatDateTime(t, { timeZone: jobZone, withZone: true })}</td>
                    {sameZone ? null : <td>{formatDateTime(t, { timeZone: localZone, withZone: true })}</td>}
                    <td className="nowrap muted">{formatRelative(t, now)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
            </div>
          ) : (
            <p className="muted small">It never fires again.</p>
          )}
          {sameZone ? <p className="muted small">The job's zone is also yours ({localZone}).</p> : null}
        </>
      )}
    </section>
  );
}

/** Both together, for a schedule and zone (with the 422 message shown inside). */
export function SchedulePreview({ schedule, timezone, localZone }: { schedule: string; timezone: string; localZone?: string }) {
  const p = useSchedulePreview(schedule, timezone);
  return (
    <>
      {p.error ? (
        <p className="field-error" role="alert">
          {p.error.message}
        </p>
      ) : null}
      <SchedulePreviewView preview={p.error ? undefined : p.data} timezone={p.timezone} pending={p.pending} failed={!!p.error} localZone={localZone} />
    </>
  );
}
