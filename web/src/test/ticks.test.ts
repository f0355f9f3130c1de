import { describe, expect, it } from "vitest";
import { decimalsFor, durationAxis, niceStep, timeAxis } from "../lib/ticks";

const distinct = (xs: string[]) => new Set(xs).size === xs.length;

describe("chart ticks", () => {
  it("picks round steps and the decimals they need", () => {
    expect(niceStep(2.1, 5)).toBe(0.5);
    expect(niceStep(54, 5)).toBe(20);
    expect(niceStep(1, 5)).toBe(0.2);
    expect(decimalsFor(0.5)).toBe(1);
    expect(decimalsFor(0.25)).toBe(2);
    expect(decimalsFor(20)).toBe(0);
  });

  it("labels small durations so that neighbours differ (not 2 ms, 2 ms, 1 ms, 1 ms)", () => {
    const a = durationAxis([0.43, 0.6, 1.2, 1.9, 2.1]);
    const labels = a.ticks.map(a.format);
    expect(labels).toEqual(["0.0 ms", "0.5 ms", "1.0 ms", "1.5 ms", "2.0 ms", "2.5 ms"]);
    expect(a.domain).toEqual([0, 2.5]);
  });

  it.each([
    [[0.01, 0.03, 0.07]],
    [[3, 17, 54]],
    [[12, 1023.56]],
    [[900, 4_200]],
    [[-3, 2]],
    [[65_000, 400_000]],
    [[null, 5]],
    [[]],
  ])("gives distinct labels and covers the values: %j", (values) => {
    const a = durationAxis(values as (number | null)[]);
    const labels = a.ticks.map(a.format);
    expect(distinct(labels)).toBe(true);
    expect(a.ticks.length).toBeGreaterThanOrEqual(2);
    const vs = (values as (number | null)[]).filter((v): v is number => v !== null);
    for (const v of vs) {
      expect(v).toBeGreaterThanOrEqual(a.domain[0]);
      expect(v).toBeLessThanOrEqual(a.domain[1]);
    }
  });

  it("switches units for long durations", () => {
    const a = durationAxis([900, 4_200]);
    expect(a.ticks.map(a.format)).toEqual(["0 s", "1 s", "2 s", "3 s", "4 s", "5 s"]);
  });

  it.each([
    [4_000],
    [30_000],
    [10 * 60_000],
    [5 * 3_600_000],
    [3 * 86_400_000],
  ])("puts time ticks at round steps, each label distinct, over %d ms", (span) => {
    const min = Date.parse("2030-01-01T05:03:49.881Z");
    const a = timeAxis(min, min + span, 6, "Europe/Paris");
    const labels = a.ticks.map(a.format);
    expect(a.ticks.length).toBeGreaterThanOrEqual(2);
    expect(distinct(labels)).toBe(true);
    for (const t of a.ticks) {
      expect(t).toBeGreaterThanOrEqual(min);
      expect(t).toBeLessThanOrEqual(min + span);
    }
  });

  it("shows seconds under a minute's step and the date over a day", () => {
    const min = Date.parse("2030-01-01T05:04:00Z");
    const s = timeAxis(min, min + 30_000, 6, "UTC");
    expect(s.ticks.map(s.format)[0]).toBe("05:04:00");
    const d = timeAxis(min, min + 3 * 86_400_000, 6, "UTC");
    expect(d.ticks.map(d.format)[0]).toMatch(/Jan/);
  });
});
