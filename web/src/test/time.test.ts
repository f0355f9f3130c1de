import { describe, expect, it } from "vitest";
import { formatDateTime, formatDuration, formatRelative, utcToWallTime, wallTimeToUtc, zoneLabel } from "../lib/time";

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

describe("zone labels", () => {
  it("names a zone briefly, as the times show it", () => {
    const winter = "2030-01-15T12:00:00Z";
    expect(zoneLabel("UTC", winter, "en-US")).toBe("UTC");
    expect(zoneLabel("Europe/Paris", winter, "en-US")).toBe("GMT+1");
    expect(zoneLabel("Europe/Paris", "2030-07-15T12:00:00Z", "en-US")).toBe("GMT+2");
    expect(zoneLabel("Asia/Tokyo", winter, "en-US")).toBe("GMT+9");
  });

  it("writes a time with its zone, and in tables drops today's date and this year", () => {
    const t = "2030-01-15T05:01:32Z";
    expect(formatDateTime(t, { timeZone: "Europe/Paris", withZone: true, locale: "en-US" })).toBe("Jan 15, 2030, 06:01:32 GMT+1");
    const now = Date.parse("2030-01-15T20:00:00Z");
    expect(formatDateTime(t, { timeZone: "Europe/Paris", withDate: "auto", now, locale: "en-US" })).toBe("06:01:32");
    expect(formatDateTime(t, { timeZone: "Europe/Paris", withDate: "auto", now: now + 86_400_000, locale: "en-US" })).toBe("Jan 15, 06:01:32");
    expect(formatDateTime(t, { timeZone: "Europe/Paris", withDate: "auto", now: now + 365 * 86_400_000, locale: "en-US" })).toBe("Jan 15, 2030, 06:01:32");
    // "today" is the zone's: 23:30 UTC on the 14th is already the 15th in Tokyo.
    const tokyoAfternoon = Date.parse("2030-01-15T05:00:00Z");
    expect(formatDateTime("2030-01-14T23:30:00Z", { timeZone: "Asia/Tokyo", withDate: "auto", now: tokyoAfternoon, locale: "en-US" })).toBe("08:30:00");
    expect(formatDateTime("2030-01-14T23:30:00Z", { timeZone: "UTC", withDate: "auto", now: tokyoAfternoon, locale: "en-US" })).toBe("Jan 14, 23:30:00");
    expect(formatDateTime(t, { timeZone: "UTC", withDate: false, withSeconds: false, locale: "en-US" })).toBe("05:01");
  });
});
