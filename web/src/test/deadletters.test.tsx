import { describe, expect, it } from "vitest";
import { screen, within } from "@testing-library/react";
import { DeadLettersPage } from "../pages/DeadLetters";
import { formatDateTime } from "../lib/time";
import { json, mockFetch, renderWithApp } from "./helpers";

describe("dead letters", () => {
  it("names each job (job_name), linking to it", async () => {
    const fetch = mockFetch({
      "GET /api/v1/dead-letters": () =>
        json({
          dead_letters: [
            {
              id: "11",
              job_id: "9c8fc2a2-0b6e-4f59-878c-4fc42344f05f",
              job_name: "nightly-backup",
              execution_id: "80",
              reason: "failed: exit code 3; retries spent (2 attempts)",
              attempts: 2,
              created_at: "2030-01-01T05:04:51Z",
            },
          ],
        }),
    });
    renderWithApp(<DeadLettersPage />);
    const table = await screen.findByRole("table", { name: "Dead letters" });
    expect(within(table).getByRole("link", { name: "nightly-backup" })).toHaveAttribute("href", "/jobs/9c8fc2a2-0b6e-4f59-878c-4fc42344f05f");
    expect(within(table).queryByText(/9c8fc2a2…/)).not.toBeInTheDocument();
    expect(within(table).getByText(formatDateTime("2030-01-01T05:04:51Z", { withZone: true, withDate: "auto" }))).toBeInTheDocument();
    // The names come with the dead letters: no job list is read for them.
    expect(fetch.mock.calls.every(([u]) => !String(u).includes("/jobs"))).toBe(true);
  });
});
