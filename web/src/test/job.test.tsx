import { describe, expect, it } from "vitest";
import { screen, waitFor, within } from "@testing-library/react";
import { Route } from "react-router-dom";
import { JobPage } from "../pages/Job";
import { formatDateTime, zoneLabel } from "../lib/time";
import { json, mockFetch, renderWithApp } from "./helpers";

const JOB = {
  id: "j1",
  owner_id: "u",
  name: "tick",
  command: "date",
  schedule: "* * * * * *",
  schedule_description: "Every second",
  timezone: "Asia/Tokyo",
  status: "active",
  next_run_at: "2030-01-01T12:00:01Z",
  created_at: "2030-01-01T11:00:00Z",
  updated_at: "2030-01-01T11:00:00Z",
};
const RUN = {
  id: "7",
  job_id: "j1",
  attempt: 1,
  status: "succeeded",
  trigger: "schedule",
  scheduled_at: "2030-01-01T11:59:59Z",
  started_at: "2030-01-01T11:59:59.010Z",
  finished_at: "2030-01-01T11:59:59.020Z",
  exit_code: 0,
  lateness_ms: 1,
};

const renderJob = () => renderWithApp(<p>elsewhere</p>, { path: "/jobs/j1", routes: <Route path="/jobs/:id" element={<JobPage />} /> });

function mock(statsRuns: () => number) {
  return mockFetch({
    "GET /api/v1/jobs/j1": () => json(JOB),
    "GET /api/v1/jobs/j1/executions": () => json({ executions: [RUN] }),
    "GET /api/v1/jobs/j1/stats": () =>
      json({ runs: statsRuns(), succeeded: statsRuns(), failed: 0, success_rate: 1, duration_ms: {}, lateness_ms: {}, last: [] }),
    "GET /api/v1/jobs": () => json({ jobs: [JOB] }),
  });
}

describe("job page", () => {
  it("names the zone of every time: the job's for the next fire, the browser's elsewhere", async () => {
    mock(() => 1);
    renderJob();
    await screen.findByRole("heading", { level: 1, name: /tick/ });
    const dd = (term: string) => screen.getByText(term, { selector: "dt" }).nextElementSibling as HTMLElement;
    expect(dd("Next fire")).toHaveTextContent(formatDateTime(JOB.next_run_at, { timeZone: "Asia/Tokyo", withZone: true }));
    expect(dd("Created")).toHaveTextContent(formatDateTime(JOB.created_at, { withZone: true }));
    expect(dd("Created").textContent).toContain(zoneLabel(undefined, JOB.created_at));
    const history = await screen.findByRole("table", { name: "Run history" });
    expect(within(history).getByRole("columnheader", { name: `Scheduled (${zoneLabel()})` })).toBeInTheDocument();
  });

  it("refreshes the day's stats as often as the history while the job is active", async () => {
    let runs = 0;
    const fetch = mock(() => runs);
    renderJob();
    const dd = async () => (await screen.findByText("Runs", { selector: "dt" })).nextElementSibling as HTMLElement;
    expect(await dd()).toHaveTextContent("0 (0 succeeded");
    runs = 3;
    await waitFor(async () => expect(await dd()).toHaveTextContent("3 (3 succeeded"), { timeout: 3500 });
    const statsCalls = fetch.mock.calls.filter(([u]) => String(u).endsWith("/stats")).length;
    expect(statsCalls).toBeGreaterThanOrEqual(2);
  });
});
