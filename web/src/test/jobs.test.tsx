import { describe, expect, it } from "vitest";
import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { JobsPage } from "../pages/Jobs";
import type { Job, RecentRun } from "../api";
import { lastResult } from "../lib/runs";
import { json, mockFetch, renderWithApp } from "./helpers";

const job = (name: string, recent_runs?: RecentRun[], extra: Partial<Job> = {}): Job => ({
  id: `id-${name}`,
  owner_id: "u",
  name,
  command: "date",
  schedule: "* * * * * *",
  schedule_description: "Every second",
  timezone: "UTC",
  status: "active",
  next_run_at: "2030-01-01T12:00:01Z",
  created_at: "2030-01-01T11:00:00Z",
  updated_at: "2030-01-01T11:00:00Z",
  recent_runs,
  ...extra,
});

describe("last result", () => {
  it("is the newest run that ended with an outcome: not a scheduled, running, cancelled or skipped one", () => {
    const runs: RecentRun[] = [
      { id: "9", status: "running" },
      { id: "8", status: "cancelled", exit_code: -15 },
      { id: "7", status: "skipped" },
      { id: "6", status: "failed", exit_code: 3 },
      { id: "5", status: "succeeded", exit_code: 0 },
    ];
    expect(lastResult(runs)?.id).toBe("6");
    expect(lastResult([{ id: "2", status: "lost" }, { id: "1", status: "succeeded" }])?.status).toBe("lost");
    expect(lastResult([{ id: "1", status: "cancelled" }])).toBeUndefined();
    expect(lastResult(undefined)).toBeUndefined();
  });
});

describe("jobs list", () => {
  it("asks the server for the filters and the last 20 runs, and shows what it answers", async () => {
    const asked: URLSearchParams[] = [];
    const fetch = mockFetch({
      "GET /api/v1/jobs": (url) => {
        asked.push(url.searchParams);
        return json({ jobs: [job("fails", [{ id: "2", status: "failed", exit_code: 3 }])] });
      },
    });
    renderWithApp(<JobsPage />, { path: "/jobs?result=failed&q=fa" });
    const table = await screen.findByRole("table", { name: "Jobs" });
    expect(within(table).getByRole("link", { name: "fails" })).toBeInTheDocument();
    const p = asked[0];
    expect(p.get("result")).toBe("failed");
    expect(p.get("q")).toBe("fa");
    expect(p.get("recent")).toBe("20");
    // No per-job /executions reads: the server sends recent_runs.
    expect(fetch.mock.calls.every(([u]) => !String(u).includes("/executions"))).toBe(true);
    expect(screen.getByLabelText("Last result")).toHaveValue("failed");
  });

  it("sends a new search and the other result to the server", async () => {
    const asked: URLSearchParams[] = [];
    mockFetch({
      "GET /api/v1/jobs": (url) => {
        asked.push(url.searchParams);
        return json({ jobs: [job("tick", [])] });
      },
    });
    renderWithApp(<JobsPage />, { path: "/jobs" });
    await screen.findByRole("table", { name: "Jobs" });
    await userEvent.selectOptions(screen.getByLabelText("Last result"), "succeeded");
    await waitFor(() => expect(asked.at(-1)?.get("result")).toBe("succeeded"));
    await userEvent.type(screen.getByLabelText("Search by name"), "ti");
    await waitFor(() => expect(asked.at(-1)?.get("q")).toBe("ti"), { timeout: 2000 });
  });

  it("shows as last result the newest run with an outcome, and every run in the strip", async () => {
    mockFetch({
      "GET /api/v1/jobs": () =>
        json({
          jobs: [
            job("paused-one", [
              { id: "12", status: "cancelled", exit_code: -15 },
              { id: "11", status: "failed", exit_code: 3, finished_at: new Date().toISOString() },
              { id: "10", status: "succeeded", exit_code: 0 },
            ]),
            // No recent_runs at all: the server leaves the key out for a job with none.
            job("fresh", undefined),
          ],
        }),
    });
    renderWithApp(<JobsPage />, { path: "/jobs" });
    const table = await screen.findByRole("table", { name: "Jobs" });
    const [, row, fresh] = within(table).getAllByRole("row");
    const last = row.querySelector('[data-label="Last result"]') as HTMLElement;
    expect(within(last).getByText("failed")).toBeInTheDocument();
    expect(last).toHaveTextContent("exit 3");
    expect(last).not.toHaveTextContent("cancelled");
    expect(last).not.toHaveTextContent("-15");
    expect(within(last).getByRole("link")).toHaveAttribute("href", "/runs/11");
    expect(row).toHaveClass("row-failing");
    const strip = within(row).getByRole("list", { name: "Last runs of paused-one" });
    const cancelled = within(strip).getByRole("link", { name: /^Run 12: cancelled/ }) as HTMLElement;
    expect(cancelled.style.background).toBe("var(--st-muted)");
    expect(within(strip).getAllByRole("link")).toHaveLength(3);
    expect(within(fresh).getByText("no runs yet")).toBeInTheDocument();
    expect(fresh.querySelector('[data-label="Last result"]')).toHaveTextContent("—");
  });

  it("says so when no job matches the filters", async () => {
    mockFetch({ "GET /api/v1/jobs": () => json({ jobs: [] }) });
    renderWithApp(<JobsPage />, { path: "/jobs?result=failed" });
    expect(await screen.findByText("No job matches these filters.")).toBeInTheDocument();
  });
});
