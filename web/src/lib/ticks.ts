// Chart axes whose tick labels never repeat: ticks at round steps (1, 2, 5 x 10^n),
// labels with as many decimals as the step needs.

import { browserTimeZone, formatDateTime, offsetMs } from "./time";

/** A round step near `span / count`: 1, 2 or 5 times a power of ten. */
export function niceStep(span: number, count = 5): number {
  const raw = span / Math.max(1, count);
  if (!(raw > 0) || !Number.isFinite(raw)) return 1;
  const p = 10 ** Math.floor(Math.log10(raw));
  const f = raw / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

/** Decimals needed to write multiples of `step` apart (0.5 -> 1, 0.25 -> 2, 20 -> 0). */
export function decimalsFor(step: number): number {
  for (let d = 0; d < 10; d++) {
    const scaled = step * 10 ** d;
    if (Math.abs(scaled - Math.round(scaled)) < 1e-9 * Math.max(1, scaled)) return d;
  }
  return 10;
}

export interface Axis {
  domain: [number, number];
  ticks: number[];
  format: (v: number) => string;
}

const UNITS: [string, number][] = [
  ["ms", 1],
  ["s", 1000],
  ["min", 60_000],
  ["h", 3_600_000],
];

/**
 * A duration axis (values in ms) from 0 (or the lowest value, if negative) to
 * just above the highest: round ticks in one unit (ms, s, min or h), each
 * label distinct ("0.5 ms", "1.0 ms", "1.5 ms").
 */
export function durationAxis(values: (number | null | undefined)[], count = 5): Axis {
  const vs = values.filter((v): v is number => typeof v === "number" && Number.isFinite(v));
  const lo = Math.min(0, ...vs);
  const hi = Math.max(...vs, lo);
  // The unit: the largest whose 1 fits under the top value (ms below 1 s, ...).
  const top = Math.max(Math.abs(lo), Math.abs(hi));
  let [unit, size] = UNITS[0];
  for (const [u, s] of UNITS) if (top >= 2 * s) [unit, size] = [u, s];
  const span = (hi - lo) / size || 1;
  const step = niceStep(span, count);
  const first = Math.floor(lo / size / step) * step;
  const last = Math.max(Math.ceil(hi / size / step) * step, first + step);
  const ticks: number[] = [];
  for (let i = 0; first + i * step <= last + step / 1e6; i++) ticks.push(+(first + i * step).toFixed(10) * size);
  const decimals = decimalsFor(step);
  return {
    domain: [ticks[0], ticks[ticks.length - 1]],
    ticks,
    format: (v: number) => `${(v / size).toFixed(decimals)} ${unit}`,
  };
}

const TIME_STEPS = [
  1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800,
].map((s) => s * 1000);

/**
 * A time axis over [min, max] (ms since the epoch): ticks at round steps (1 s,
 * 5 s, 1 min, 15 min, 1 h, 1 d ...), labelled with seconds when the step is
 * under a minute, and with the date when the range passes a day, so no two
 * labels read the same.
 */
export function timeAxis(min: number, max: number, count = 6, timeZone?: string): Axis {
  const span = Math.max(max - min, 1000);
  const step = TIME_STEPS.find((s) => span / s <= count) ?? TIME_STEPS[TIME_STEPS.length - 1];
  // Round in the zone's wall clock (a day starts at its midnight, not UTC's).
  let off = 0;
  try {
    off = offsetMs(new Date(min), timeZone ?? browserTimeZone());
  } catch {
    /* an unknown zone: UTC */
  }
  const ticks: number[] = [];
  for (let t = Math.ceil((min + off) / step) * step - off; t <= max; t += step) ticks.push(t);
  const withDate = step >= 86_400_000 || max - min > 86_400_000;
  const withSeconds = step < 60_000;
  return {
    domain: [min, max],
    ticks,
    format: (v: number) => formatDateTime(v, { timeZone, withDate: withDate ? "short" : false, withSeconds }),
  };
}
