// The create/edit form's values, to and from the API's job spec, and where an
// API error's `field` (a dotted path like `notify[0].on[1]`) shows in the form.

import type { Job, JobSpec } from "../api";
import { utcToWallTime, wallTimeToUtc } from "./time";

export interface FormValues {
  name: string;
  kind: "command" | "steps";
  command: string;
  steps: { name: string; run: string }[];
  image: string;
  container: "" | "per_run" | "per_job";
  schedule: string;
  timezone: string;
  run_at: string;
  start_at: string;
  end_at: string;
  run_once: boolean;
  misfire_policy: "" | "run_once" | "run_all" | "skip";
  delivery: "" | "at_least_once" | "at_most_once";
  timeout_seconds: string;
  priority: string;
  concurrency_policy: "" | "allow" | "forbid" | "replace";
  max_concurrency: string;
  resources: { cpus: string; memory_mb: string; pids: string };
  env: { name: string; value: string; secret?: boolean }[];
  max_retries: string;
  retry: {
    backoff_seconds: string;
    max_backoff_seconds: string;
    multiplier: string;
    jitter: string;
    on: string[];
    never_exit_codes: string;
  };
  notify: { webhook: string; on: string[]; format: "json" | "slack" }[];
  after: { job_id: string; on: "success" | "failure" | "always" }[];
}

export const RETRY_ON = ["failed", "timed_out", "lost", "oom_killed"] as const;
export const NOTIFY_ON = ["failed", "dead", "timed_out", "recovered", "missed"] as const;

export function emptyForm(): FormValues {
  return {
    name: "",
    kind: "command",
    command: "",
    steps: [{ name: "", run: "" }],
    image: "",
    container: "",
    schedule: "",
    timezone: "UTC",
    run_at: "",
    start_at: "",
    end_at: "",
    run_once: false,
    misfire_policy: "",
    delivery: "",
    timeout_seconds: "",
    priority: "",
    concurrency_policy: "",
    max_concurrency: "",
    resources: { cpus: "", memory_mb: "", pids: "" },
    env: [],
    max_retries: "",
    retry: { backoff_seconds: "", max_backoff_seconds: "", multiplier: "", jitter: "", on: [], never_exit_codes: "" },
    notify: [],
    after: [],
  };
}

const str = (v: unknown) => (v === undefined || v === null ? "" : String(v));

export function jobToForm(job: Job): FormValues {
  const tz = job.timezone || "UTC";
  const f = emptyForm();
  return {
    ...f,
    name: job.name ?? "",
    kind: job.steps && job.steps.length ? "steps" : "command",
    command: job.command ?? "",
    steps: job.steps && job.steps.length ? job.steps.map((s) => ({ name: s.name ?? "", run: s.run ?? "" })) : f.steps,
    image: job.image ?? "",
    container: job.container ?? "",
    schedule: job.schedule ?? "",
    timezone: tz,
    run_at: utcToWallTime(job.run_at, tz),
    start_at: utcToWallTime(job.start_at, tz),
    end_at: utcToWallTime(job.end_at, tz),
    run_once: !!job.run_once,
    misfire_policy: job.misfire_policy ?? "",
    delivery: job.delivery ?? "",
    timeout_seconds: str(job.timeout_seconds),
    priority: str(job.priority),
    concurrency_policy: job.concurrency_policy ?? "",
    max_concurrency: str(job.max_concurrency),
    resources: {
      cpus: str(job.resources?.cpus),
      memory_mb: str(job.resources?.memory_mb),
      pids: str(job.resources?.pids),
    },
    env: Object.entries(job.env ?? {}).map(([name, value]) =>
      typeof value === "object" && value !== null
        ? { name, value: String(value.value), secret: !!value.secret } // a secret's value reads "***"
        : { name, value: String(value), secret: false },
    ),
    max_retries: str(job.max_retries),
    retry: {
      backoff_seconds: str(job.retry?.backoff_seconds),
      max_backoff_seconds: str(job.retry?.max_backoff_seconds),
      multiplier: str(job.retry?.multiplier),
      jitter: str(job.retry?.jitter),
      on: job.retry?.on ?? [],
      never_exit_codes: (job.retry?.never_exit_codes ?? []).join(", "),
    },
    notify: (job.notify ?? []).map((n) => ({ webhook: n.webhook ?? "", on: n.on ?? [], format: n.format ?? "json" })),
    after: (job.after ?? []).map((a) => ({ job_id: a.job_id, on: a.on ?? "success" })),
  };
}

/** A number as typed; text that is not one goes to the server as typed (it says why). */
function num(v: string): number | string | undefined {
  const t = v.trim();
  if (t === "") return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : t;
}

function prune<T extends Record<string, unknown>>(o: T): Partial<T> | undefined {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined || v === "" || (Array.isArray(v) && v.length === 0)) continue;
    out[k] = v;
  }
  return Object.keys(out).length ? (out as Partial<T>) : undefined;
}

/**
 * The spec the form describes. Empty fields are left out (the server's
 * defaults apply); `keep` carries fields of an edited job the form does not
 * show (an HTTP call), so a PUT does not drop them.
 */
export function formToSpec(v: FormValues, keep: Partial<JobSpec> = {}): JobSpec {
  const tz = v.timezone.trim();
  const zone = tz || "UTC";
  const spec: Record<string, unknown> = { ...keep, name: v.name.trim() };
  if (v.kind === "steps") {
    const steps = v.steps.filter((s) => s.name.trim() || s.run.trim());
    if (steps.length) spec.steps = steps.map((s) => ({ name: s.name.trim(), run: s.run }));
  } else if (v.command.trim()) spec.command = v.command;
  const set = (k: string, val: unknown) => {
    if (val !== undefined && val !== "") spec[k] = val;
  };
  set("image", v.image.trim());
  set("container", v.container);
  set("schedule", v.schedule.trim());
  set("timezone", tz);
  if (v.run_at) spec.run_at = wallTimeToUtc(v.run_at, zone);
  if (v.start_at) spec.start_at = wallTimeToUtc(v.start_at, zone);
  if (v.end_at) spec.end_at = wallTimeToUtc(v.end_at, zone);
  if (v.run_once) spec.run_once = true;
  set("misfire_policy", v.misfire_policy);
  set("delivery", v.delivery);
  set("timeout_seconds", num(v.timeout_seconds));
  set("priority", num(v.priority));
  set("concurrency_policy", v.concurrency_policy);
  set("max_concurrency", num(v.max_concurrency));
  const resources = prune({
    cpus: num(v.resources.cpus),
    memory_mb: num(v.resources.memory_mb),
    pids: num(v.resources.pids),
  });
  if (resources) spec.resources = resources;
  const env = v.env.filter((e) => e.name.trim() || e.value);
  // A secret left at "***" keeps the value the server has stored.
  if (env.length) spec.env = Object.fromEntries(env.map((e) => [e.name.trim(), e.secret ? { value: e.value, secret: true } : e.value]));
  set("max_retries", num(v.max_retries));
  const codes = v.retry.never_exit_codes
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((c) => num(c));
  const retry = prune({
    backoff_seconds: num(v.retry.backoff_seconds),
    max_backoff_seconds: num(v.retry.max_backoff_seconds),
    multiplier: num(v.retry.multiplier),
    jitter: num(v.retry.jitter),
    on: v.retry.on,
    never_exit_codes: codes,
  });
  if (retry) spec.retry = retry;
  const notify = v.notify
    .filter((n) => n.webhook.trim() || n.on.length)
    .map((n) => ({ webhook: n.webhook.trim(), on: n.on, format: n.format }));
  if (notify.length) spec.notify = notify;
  const after = v.after.filter((a) => a.job_id).map((a) => ({ job_id: a.job_id, on: a.on }));
  if (after.length) spec.after = after;
  return spec as unknown as JobSpec;
}

/** Every form field an error can show next to; `*` stands for a list index. */
export const ERROR_SLOTS = [
  "name", "command", "steps", "steps.*.name", "steps.*.run", "image", "container",
  "schedule", "timezone", "run_at", "start_at", "end_at", "run_once", "misfire_policy", "delivery",
  "timeout_seconds", "priority", "concurrency_policy", "max_concurrency",
  "resources", "resources.cpus", "resources.memory_mb", "resources.pids",
  "env", "env.*.name", "env.*.value", "env.*.secret",
  "max_retries", "retry", "retry.backoff_seconds", "retry.max_backoff_seconds", "retry.multiplier",
  "retry.jitter", "retry.on", "retry.never_exit_codes",
  "notify", "notify.*.webhook", "notify.*.on", "notify.*.format",
  "after", "after.*.job_id", "after.*.on",
] as const;

function matches(slot: string, segs: string[]): boolean {
  const s = slot.split(".");
  return s.length === segs.length && s.every((p, i) => (p === "*" ? /^\d+$/.test(segs[i]) : p === segs[i]));
}

/**
 * The form field an API error's `field` names, or null (show it at the top).
 * `notify[0].on[1]` -> `notify.0.on`; `retry.multiplier` -> itself;
 * `env.FOO` -> the row holding FOO; `http.url` -> null (not in the form).
 */
export function resolveErrorField(apiField: string | undefined | null, values?: Pick<FormValues, "env" | "kind">): string | null {
  if (!apiField) return null;
  let segs = apiField
    .replace(/\[(\d+)\]/g, ".$1")
    .split(".")
    .filter(Boolean);
  if (segs[0] === "env" && segs.length >= 2 && !/^\d+$/.test(segs[1])) {
    const i = values?.env.findIndex((e) => e.name.trim() === segs[1]) ?? -1;
    segs = i >= 0 ? ["env", String(i), "value"] : ["env"];
  }
  if (segs[0] === "command" && values?.kind === "steps") segs = ["steps"];
  for (let n = segs.length; n > 0; n--) {
    const head = segs.slice(0, n);
    if (ERROR_SLOTS.some((slot) => matches(slot, head))) return head.join(".");
  }
  return null;
}

/** The message without its leading "field: " (it shows next to that field). */
export function messageForField(message: string, apiField?: string | null): string {
  if (apiField && message.startsWith(`${apiField}: `)) return message.slice(apiField.length + 2);
  return message;
}
