import { describe, expect, it } from "vitest";
import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { JobForm } from "../pages/JobForm";
import { emptyForm, formToSpec, jobToForm, resolveErrorField } from "../lib/jobForm";
import type { Job } from "../api";
import { json, mockFetch, renderWithApp } from "./helpers";

describe("API error next to the field it names", () => {
  it("puts a 422 on retry.multiplier next to the Multiplier input", async () => {
    const fetch = mockFetch({
      "GET /api/v1/jobs": () => json({ jobs: [], next_page_token: "" }),
      "POST /api/v1/jobs": () =>
        json({ error: { code: "invalid_spec", message: "retry.multiplier: must be at least 1", field: "retry.multiplier" } }, 422),
    });
    renderWithApp(<JobForm />);
    await userEvent.type(screen.getByLabelText("Name"), "flaky");
    await userEvent.type(screen.getByLabelText("Command"), "exit 1");
    await userEvent.type(screen.getByLabelText("Multiplier"), "0.5");
    await userEvent.click(screen.getByRole("button", { name: "Create" }));

    const input = screen.getByLabelText("Multiplier");
    await waitFor(() => expect(input).toHaveAccessibleDescription("must be at least 1"));
    expect(input).toHaveAttribute("aria-invalid", "true");
    // Not at the top of the form.
    expect(screen.queryByText(/Not created/)).not.toBeInTheDocument();

    const post = fetch.mock.calls.find(([, init]) => init?.method === "POST")!;
    expect(JSON.parse(String(post[1]!.body))).toEqual({ name: "flaky", command: "exit 1", timezone: "UTC", retry: { multiplier: 0.5 } });
  });

  it("shows an error naming no field of the form at the top", async () => {
    mockFetch({
      "GET /api/v1/jobs": () => json({ jobs: [] }),
      "POST /api/v1/jobs": () => json({ error: { code: "throttled", message: "slow down" } }, 429),
    });
    renderWithApp(<JobForm />);
    await userEvent.type(screen.getByLabelText("Name"), "x");
    await userEvent.click(screen.getByRole("button", { name: "Create" }));
    expect(await screen.findByText("slow down")).toBeInTheDocument();
    expect(screen.getByText(/Not created/)).toBeInTheDocument();
  });
});

describe("resolveErrorField", () => {
  const values = { kind: "command" as const, env: [{ name: "A", value: "1" }, { name: "TOKEN", value: "x" }] };
  it.each([
    ["retry.multiplier", "retry.multiplier"],
    ["notify[0].on[1]", "notify.0.on"],
    ["notify[2].webhook", "notify.2.webhook"],
    ["steps[1].run", "steps.1.run"],
    ["after[0].job_id", "after.0.job_id"],
    ["retry.never_exit_codes[3]", "retry.never_exit_codes"],
    ["resources.cpus", "resources.cpus"],
    ["env.TOKEN", "env.1.value"],
    ["env.MISSING", "env"],
    ["schedule", "schedule"],
    ["http.url", null],
    ["", null],
  ])("%s -> %s", (api, form) => {
    expect(resolveErrorField(api, values)).toBe(form);
  });
});

describe("formToSpec", () => {
  it("leaves empty fields to the server's defaults and reads times in the job's zone", () => {
    const v = emptyForm();
    v.name = "n";
    v.command = "true";
    v.timezone = "Europe/Paris";
    v.run_at = "2030-07-01T09:00";
    v.retry.never_exit_codes = "2, 64";
    v.notify = [{ webhook: "https://h", on: ["failed"], format: "slack" }];
    expect(formToSpec(v)).toEqual({
      name: "n",
      command: "true",
      timezone: "Europe/Paris",
      run_at: "2030-07-01T07:00:00Z",
      retry: { never_exit_codes: [2, 64] },
      notify: [{ webhook: "https://h", on: ["failed"], format: "slack" }],
    });
  });
});

describe("secret env values", () => {
  const job = {
    id: "j1",
    owner_id: "u1",
    status: "active",
    name: "deploy",
    command: "./deploy.sh",
    timezone: "UTC",
    env: { MODE: "prod", TOKEN: { value: "***", secret: true } },
    created_at: "2025-06-01T00:00:00Z",
    updated_at: "2025-06-01T00:00:00Z",
  } as unknown as Job;

  it("round-trips a secret as *** (the server keeps it) and a plain value as itself", () => {
    const form = jobToForm(job);
    expect(form.env).toEqual([
      { name: "MODE", value: "prod", secret: false },
      { name: "TOKEN", value: "***", secret: true },
    ]);
    expect(formToSpec(form).env).toEqual({ MODE: "prod", TOKEN: { value: "***", secret: true } });
  });

  it("sends a new secret marked secret, from a masked input", async () => {
    const fetch = mockFetch({
      "GET /api/v1/jobs": () => json({ jobs: [], next_page_token: "" }),
      "POST /api/v1/jobs": () => json({ ...job, env: { TOKEN: { value: "***", secret: true } } }, 201),
    });
    renderWithApp(<JobForm />);
    await userEvent.type(screen.getByLabelText("Name"), "deploy");
    await userEvent.type(screen.getByLabelText("Command"), "./deploy.sh");
    await userEvent.click(screen.getByRole("button", { name: "Add variable" }));
    await userEvent.type(screen.getByLabelText("Variable 1"), "TOKEN");
    await userEvent.click(screen.getByLabelText("Secret 1"));
    expect(screen.getByLabelText("Value 1")).toHaveAttribute("type", "password");
    await userEvent.type(screen.getByLabelText("Value 1"), "s3cret");
    await userEvent.click(screen.getByRole("button", { name: "Create" }));
    await waitFor(() => expect(fetch.mock.calls.some(([, init]) => init?.method === "POST")).toBe(true));
    const post = fetch.mock.calls.find(([, init]) => init?.method === "POST")!;
    expect(JSON.parse(String(post[1]!.body)).env).toEqual({ TOKEN: { value: "s3cret", secret: true } });
  });
});
