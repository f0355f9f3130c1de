import { describe, expect, it } from "vitest";
import { screen, within } from "@testing-library/react";
import { ClusterPage } from "../pages/Cluster";
import { json, mockFetch, renderWithApp } from "./helpers";

const CLUSTER = {
  leader: "coordinator-1",
  epoch: 5,
  coordinators: ["coordinator-1"],
  schedulers: [{ id: "scheduler-1", shards: [0, 1, 2, 3], address: "127.0.0.1:1" }],
  workers: [
    { id: "worker-1", capacity: 64, running: 1, runtime: "process" },
    { id: "worker-2", capacity: 64, running: 0, runtime: "docker" },
  ],
  metrics: { "coordinator-1": "127.0.0.1:2", "scheduler-1": "127.0.0.1:3", "worker-1": "127.0.0.1:4", "worker-2": "127.0.0.1:5", gateway: "127.0.0.1:8080" },
  health: {
    "coordinator-1": "ok",
    "scheduler-1": "ok",
    "worker-1": "ok",
    "worker-2": "not answering: connection refused",
    gateway: "ok",
  },
};

const healthOf = (table: HTMLElement, id: string) => {
  const row = within(table).getByText(id).closest("tr")!;
  const col = within(table).getAllByRole("columnheader").findIndex((h) => h.textContent === "Health");
  return within(row).getAllByRole("cell")[col];
};

describe("cluster page", () => {
  it("shows each member's health from the reply, ok in green and the reason in red", async () => {
    mockFetch({ "GET /api/v1/cluster": () => json(CLUSTER) });
    renderWithApp(<ClusterPage />);
    const workers = await screen.findByRole("table", { name: "Workers" });
    expect(healthOf(workers, "worker-1")).toHaveTextContent("ok");
    expect(within(healthOf(workers, "worker-1")).getByText("ok")).toHaveClass("tone-ok");
    const down = within(healthOf(workers, "worker-2")).getByText("not answering: connection refused");
    expect(down).toHaveClass("tone-text-bad");
    expect(within(workers).getByText("docker")).toBeInTheDocument();
    expect(healthOf(screen.getByRole("table", { name: "Coordinators" }), "coordinator-1")).toHaveTextContent("ok");
    expect(healthOf(screen.getByRole("table", { name: "Schedulers" }), "scheduler-1")).toHaveTextContent("ok");
    expect(screen.getByRole("status")).toHaveTextContent("Not answering: worker-2.");
    expect(screen.queryByText(/carries no per-member health/)).not.toBeInTheDocument();
  });

  it("takes the gateway card from health.gateway", async () => {
    mockFetch({
      "GET /api/v1/cluster": () => json({ ...CLUSTER, health: { ...CLUSTER.health, gateway: "not answering: timed out" } }),
    });
    renderWithApp(<ClusterPage />);
    const label = await screen.findByText("Gateway");
    const card = label.closest(".card") as HTMLElement;
    expect(within(card).getByText("down")).toHaveClass("tone-text-bad");
    expect(card).toHaveTextContent("not answering: timed out");
  });

  it("marks a worker that is stopping, in its row and in the workers card", async () => {
    const workers = [{ ...CLUSTER.workers[0], stopping: true }, { ...CLUSTER.workers[1], stopping: false }];
    mockFetch({ "GET /api/v1/cluster": () => json({ ...CLUSTER, workers }) });
    renderWithApp(<ClusterPage />);
    const table = await screen.findByRole("table", { name: "Workers" });
    expect(within(healthOf(table, "worker-1")).getByText("stopping")).toHaveClass("tone-warn");
    expect(within(healthOf(table, "worker-2")).queryByText("stopping")).not.toBeInTheDocument();
    const card = screen.getByText("Workers", { selector: ".label" }).closest(".card") as HTMLElement;
    expect(card).toHaveTextContent("1 running of 128 slots, 1 stopping");
  });
});
