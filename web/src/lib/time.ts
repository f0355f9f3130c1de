// Times as a person reads them: absolute in a named zone, and relative ("in 12 s").

import { useSyncExternalStore } from "react";

export const browserTimeZone = (): string => {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch {
    return "UTC";
  }
};

function toDate(t: string | number | Date): Date {
  return t instanceof Date ? t : new Date(t);
}

/**
 * "2 Dec 2026, 04:29:20" in `timeZone` (default: the browser's); with
 * `withZone`, the zone's short name after it ("04:29:20 GMT+1"). `withDate`:
 * false drops the date; "auto" drops it for today and the year for this year
 * (in that zone), for tables; "short" keeps the day and month, not the year.
 * `withSeconds: false` stops at minutes.
 */
export function formatDateTime(
  t: string | number | Date | null | undefined,
  opts: { timeZone?: string; locale?: string; withZone?: boolean; withDate?: boolean | "auto" | "short"; withSeconds?: boolean; now?: number } = {},
): string {
  if (t === null || t === undefined || t === "") return "—";
  const d = toDate(t);
  if (Number.isNaN(d.getTime())) return String(t);
  let showDate = opts.withDate !== false;
  let showYear = showDate && opts.withDate !== "short";
  if (opts.withDate === "auto") {
    try {
      const a = partsIn(d, opts.timeZone ?? browserTimeZone());
      const b = partsIn(new Date(opts.now ?? Date.now()), opts.timeZone ?? browserTimeZone());
      showYear = a.y !== b.y;
      showDate = showYear || a.mo !== b.mo || a.d !== b.d;
    } catch {
      /* an unknown zone: the full date */
    }
  }
  try {
    return new Intl.DateTimeFormat(opts.locale, {
      timeZone: opts.timeZone,
      year: showYear ? "numeric" : undefined,
      month: showDate ? "short" : undefined,
      day: showDate ? "numeric" : undefined,
      hour: "2-digit",
      minute: "2-digit",
      second: opts.withSeconds === false ? undefined : "2-digit",
      hourCycle: "h23",
      timeZoneName: opts.withZone ? "short" : undefined,
    }).format(d);
  } catch {
    return d.toISOString();
  }
}

/**
 * The short name of a zone at a moment, as times are labelled: "GMT+1",
 * "GMT+9", "UTC" (the browser's zone when `timeZone` is not given).
 */
export function zoneLabel(timeZone?: string, at: string | number | Date = Date.now(), locale?: string): string {
  try {
    const parts = new Intl.DateTimeFormat(locale, { timeZone, timeZoneName: "short" }).formatToParts(toDate(at));
    return parts.find((p) => p.type === "timeZoneName")?.value ?? timeZone ?? browserTimeZone();
  } catch {
    return timeZone ?? "UTC";
  }
}

/**
 * The distance from `now` to `t` in words: "in 12 s", "3 min ago", "now".
 * Seconds under a minute, minutes under an hour, hours under two days, then days.
 */
export function formatRelative(t: string | number | Date, now: number | Date = Date.now()): string {
  const target = toDate(t).getTime();
  const nowMs = now instanceof Date ? now.getTime() : now;
  if (Number.isNaN(target)) return "";
  const diff = target - nowMs;
  const abs = Math.abs(diff);
  if (abs < 1000) return "now";
  let text: string;
  if (abs < 60_000) text = `${Math.floor(abs / 1000)} s`;
  else if (abs < 3_600_000) text = `${Math.floor(abs / 60_000)} min`;
  else if (abs < 48 * 3_600_000) {
    const h = Math.floor(abs / 3_600_000);
    const m = Math.floor((abs % 3_600_000) / 60_000);
    text = h < 10 && m ? `${h} h ${m} min` : `${h} h`;
  } else text = `${Math.floor(abs / 86_400_000)} d`;
  return diff > 0 ? `in ${text}` : `${text} ago`;
}

/** "850 ms", "1.2 s", "3 min 4 s", "2 h 5 min". */
export function formatDuration(ms: number | string | null | undefined): string {
  if (ms === null || ms === undefined || ms === "") return "—";
  const v = Number(ms);
  if (!Number.isFinite(v)) return "—";
  const a = Math.abs(v);
  const sign = v < 0 ? "-" : "";
  if (a === 0) return "0 ms";
  if (a < 1) return `${sign}${a.toFixed(2)} ms`;
  if (a < 1000) return `${sign}${Math.round(a)} ms`;
  if (a < 60_000) return `${sign}${(a / 1000).toFixed(a < 10_000 ? 2 : 1)} s`;
  if (a < 3_600_000) return `${sign}${Math.floor(a / 60_000)} min ${Math.floor((a % 60_000) / 1000)} s`;
  return `${sign}${Math.floor(a / 3_600_000)} h ${Math.floor((a % 3_600_000) / 60_000)} min`;
}

/** Milliseconds between two times, or null. */
export function between(a?: string | null, b?: string | null): number | null {
  if (!a || !b) return null;
  const d = new Date(b).getTime() - new Date(a).getTime();
  return Number.isFinite(d) ? d : null;
}

// One shared clock ticking every second, for every relative time on screen.
let now = Date.now();
const subscribers = new Set<() => void>();
let timer: ReturnType<typeof setInterval> | null = null;
function subscribe(fn: () => void) {
  subscribers.add(fn);
  if (!timer) {
    timer = setInterval(() => {
      now = Date.now();
      subscribers.forEach((s) => s());
    }, 1000);
  }
  return () => {
    subscribers.delete(fn);
    if (subscribers.size === 0 && timer) {
      clearInterval(timer);
      timer = null;
    }
  };
}
/** The current time, re-rendering the caller every second. */
export function useNow(): number {
  return useSyncExternalStore(subscribe, () => now, () => now);
}

// ---------- wall times in a named zone (the job's timezone) ----------

function partsIn(d: Date, timeZone: string) {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone,
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).formatToParts(d);
  const get = (t: string) => Number(parts.find((p) => p.type === t)?.value ?? 0);
  return { y: get("year"), mo: get("month"), d: get("day"), h: get("hour") % 24, mi: get("minute"), s: get("second") };
}

/** How far `timeZone`'s wall clock is ahead of UTC at `d`, in ms. */
export function offsetMs(d: Date, timeZone: string): number {
  const p = partsIn(d, timeZone);
  const asUtc = Date.UTC(p.y, p.mo - 1, p.d, p.h, p.mi, p.s);
  return asUtc - Math.floor(d.getTime() / 1000) * 1000;
}

/** "2026-12-02T09:30" (a datetime-local value) read in `timeZone` -> RFC 3339 UTC. */
export function wallTimeToUtc(wall: string, timeZone: string): string {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?/.exec(wall);
  if (!m) return wall;
  const guess = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] ?? 0));
  let tz = timeZone || "UTC";
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
  } catch {
    tz = "UTC";
  }
  let t = guess - offsetMs(new Date(guess), tz);
  t = guess - offsetMs(new Date(t), tz);
  return new Date(t).toISOString().replace(".000Z", "Z");
}

/** RFC 3339 -> "2026-12-02T09:30:00" (a datetime-local value) in `timeZone`. */
export function utcToWallTime(iso: string | null | undefined, timeZone: string): string {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  let p;
  try {
    p = partsIn(d, timeZone || "UTC");
  } catch {
    p = partsIn(d, "UTC");
  }
  const z = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${z(p.y, 4)}-${z(p.mo)}-${z(p.d)}T${z(p.h)}:${z(p.mi)}:${z(p.s)}`;
}
