import { describe, expect, it } from "vitest";
import { screen } from "@testing-library/react";
import { RunsStrip } from "../components/RunsStrip";
import { statusTone } from "../components/Status";
import type { RecentRun } from "../api";
import { renderWithApp } from "./helpers";

describe("runs strip", () => {
  it("colours each run by its outcome, oldest left, each a link to the run", () => {
    // Newest first, as the API sends recent_runs.
    const runs: RecentRun[] = [
      { id: "6", status: "running" },
      { id: "5", status: "timed_out", exit_code: null },
      { id: "4", status: "cancelled" },
      { id: "3", status: "failed", exit_code: 3 },
      { id: "2", status: "succeeded", exit_code: 0 },
      { id: "1", status: "scheduled" },
    ];
    renderWithApp(<RunsStrip runs={runs} label="Last runs of tick" />);
    const cells = screen.getByRole("list", { name: "Last runs of tick" }).querySelectorAll("a");
    expect([...cells].map((a) => a.getAttribute("href"))).toEqual(["/runs/1", "/runs/2", "/runs/3", "/runs/4", "/runs/5", "/runs/6"]);
    const colour = (id: string) => (screen.getByRole("link", { name: new RegExp(`^Run ${id}:`) }) as HTMLElement).style.background;
    expect(colour("2")).toBe("var(--st-ok)");
    expect(colour("3")).toBe("var(--st-bad)");
    expect(colour("5")).toBe("var(--st-bad)");
    expect(colour("4")).toBe("var(--st-muted)");
    expect(colour("6")).toBe("var(--st-live)");
    expect(colour("1")).toBe("var(--st-pending)");
    expect(screen.getByRole("link", { name: /^Run 3: failed \(exit 3\)/ })).toBeInTheDocument();
  });

  it("keeps the last 20 and says when there are none", () => {
    const many = Array.from({ length: 30 }, (_, i) => ({ id: String(30 - i), status: "succeeded" as const }));
    const { unmount } = renderWithApp(<RunsStrip runs={many} />);
    expect(screen.getAllByRole("link")).toHaveLength(20);
    unmount();
    renderWithApp(<RunsStrip runs={[]} />);
    expect(screen.getByText("no runs yet")).toBeInTheDocument();
  });

  it("maps statuses to tones", () => {
    expect(statusTone("succeeded")).toBe("ok");
    expect(statusTone("lost")).toBe("bad");
    expect(statusTone("paused")).toBe("warn");
    expect(statusTone("whatever")).toBe("muted");
  });
});
