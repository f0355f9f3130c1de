import { describe, expect, it } from "vitest";
import { screen, within } from "@testing-library/react";
import { SchedulePreview } from "../components/SchedulePreview";
import { formatDateTime } from "../lib/time";
import { json, mockFetch, renderWithApp } from "./helpers";

const NEXT = [
  "2030-01-07T14:30:00Z",
  "2030-01-08T14:30:00Z",
  "2030-01-09T14:30:00Z",
  "2030-01-10T14:30:00Z",
  "2030-01-11T14:30:00Z",
];

describe("schedule preview", () => {
  it("shows the description, the warnings and the next five fires in the job's zone and the browser's", async () => {
    const fetch = mockFetch({
      "POST /api/v1/schedules/preview": () =>
        json({ next: NEXT, description: "At 09:30, Monday through Friday", warnings: ["fires in a DST gap once a year"] }),
    });
    renderWithApp(<SchedulePreview schedule="0 30 9 * * MON-FRI" timezone="America/New_York" localZone="Asia/Tokyo" />);
    const region = screen.getByRole("region", { name: "Schedule preview" });
    expect(await within(region).findByText("At 09:30, Monday through Friday")).toBeInTheDocument();
    expect(within(region).getByText("fires in a DST gap once a year")).toBeInTheDocument();

    const rows = within(within(region).getByRole("table", { name: "Next fires" })).getAllByRole("row").slice(1);
    expect(rows).toHaveLength(5);
    rows.forEach((row, i) => {
      const cells = within(row).getAllByRole("cell");
      expect(cells[1]).toHaveTextContent(formatDateTime(NEXT[i], { timeZone: "America/New_York", withZone: true }));
      expect(cells[2]).toHaveTextContent(formatDateTime(NEXT[i], { timeZone: "Asia/Tokyo", withZone: true }));
    });
    // 09:30 in New York is 23:30 in Tokyo: the two columns really are two zones.
    expect(rows[0]).toHaveTextContent(/09:30:00/);
    expect(rows[0]).toHaveTextContent(/23:30:00/);

    const body = JSON.parse(String(fetch.mock.calls[0][1]!.body));
    expect(body).toEqual({ schedule: "0 30 9 * * MON-FRI", timezone: "America/New_York", count: 5 });
  });

  it("shows a 422's message instead of times", async () => {
    mockFetch({
      "POST /api/v1/schedules/preview": () =>
        json({ error: { code: "invalid_spec", message: "schedule: '* * * *' has 4 fields", field: "schedule" } }, 422),
    });
    renderWithApp(<SchedulePreview schedule="* * * *" timezone="UTC" />);
    expect(await screen.findByRole("alert")).toHaveTextContent("has 4 fields");
    expect(screen.queryByRole("table", { name: "Next fires" })).not.toBeInTheDocument();
  });
});
