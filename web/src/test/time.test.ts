import { describe, expect, it } from "vitest";
import { formatDuration, formatRelative, utcToWallTime, wallTimeToUtc } from "../lib/time";

const NOW = Date.parse("2030-01-01T12:00:00Z");
const at = (ms: number) => new Date(NOW + ms).toISOString();

describe("relative time", () => {
  it.each([
    [12_000, "in 12 s"],
    [12_900, "in 12 s"],
    [-3_000, "3 s ago"],
    [500, "now"],
    [-400, "now"],
    [59_999, "in 59 s"],
    [60_000, "in 1 min"],
    [-5 * 60_000 - 10_000, "5 min ago"],
    [3_600_000, "in 1 h"],
    [2 * 3_600_000 + 30 * 60_000, "in 2 h 30 min"],
    [-26 * 3_600_000, "26 h ago"],
    [3 * 86_400_000, "in 3 d"],
  ])("%d ms from now -> %s", (delta, text) => {
    expect(formatRelative(at(delta), NOW)).toBe(text);
  });
});

describe("durations", () => {
  it.each([
    [0, "0 ms"],
    [0.42, "0.42 ms"],
    [850, "850 ms"],
    [1234, "1.23 s"],
    [65_000, "1 min 5 s"],
    [3_720_000, "1 h 2 min"],
    [null, "—"],
    ["15.69", "16 ms"],
  ])("%s -> %s", (ms, text) => {
    expect(formatDuration(ms as number)).toBe(text);
  });
});

describe("wall times in a named zone", () => {
  it("reads a datetime-local value in the job's zone, across DST", () => {
    expect(wallTimeToUtc("2030-01-15T09:00", "America/New_York")).toBe("2030-01-15T14:00:00Z");
    expect(wallTimeToUtc("2030-07-15T09:00", "America/New_York")).toBe("2030-07-15T13:00:00Z");
    expect(wallTimeToUtc("2030-07-15T09:00:30", "UTC")).toBe("2030-07-15T09:00:30Z");
  });
  it("writes a UTC time back as the zone's wall time", () => {
    expect(utcToWallTime("2030-07-15T13:00:00Z", "America/New_York")).toBe("2030-07-15T09:00:00");
    expect(utcToWallTime(null, "UTC")).toBe("");
  });
});
