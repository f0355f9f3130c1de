// The one module that talks to the cronfleet HTTP API (same origin, /api/v1).
// Every function is typed after ../shared/API.md and the replies the gateway
// really sends; the dashboard validates nothing itself (the server does).

export const API_BASE = "/api/v1";
const TOKEN_KEY = "cronfleet.token";

// ---------- types ----------

export type JobStatus = "active" | "paused" | "completed" | "deleted";
export type ExecutionStatus =
  | "scheduled"
  | "running"
  | "succeeded"
  | "failed"
  | "timed_out"
  | "cancelled"
  | "lost"
  | "skipped";
export type Trigger = "schedule" | "manual" | "retry" | "backfill" | "replay" | "upstream";

export interface Step {
  name: string;
  run: string;
}
export interface RetryPolicy {
  backoff_seconds?: number;
  max_backoff_seconds?: number;
  multiplier?: number;
  jitter?: number;
  on?: string[];
  never_exit_codes?: number[];
}
export interface Notify {
  webhook: string;
  on?: string[];
  format?: "json" | "slack";
}
export interface After {
  job_id: string;
  on: "success" | "failure" | "always";
}
export interface Resources {
  cpus?: number;
  memory_mb?: number;
  pids?: number;
}
export interface HttpCall {
  method?: string;
  url: string;
  headers?: Record<string, string>;
  body?: string;
  timeout_seconds?: number;
  expect_status?: number[];
}

/** The fields a user may set on a job. */
/** A secret env value: sealed at rest; every reply shows `{value: "***", secret: true}`,
 * and sending that back unchanged keeps the value stored. */
export interface SecretValue {
  value: string;
  secret: boolean;
}

export interface JobSpec {
  name: string;
  command?: string;
  steps?: Step[];
  http?: HttpCall;
  delivery?: "at_least_once" | "at_most_once";
  schedule?: string;
  run_at?: string;
  timezone?: string;
  start_at?: string;
  end_at?: string;
  image?: string;
  container?: "per_run" | "per_job";
  env?: Record<string, string | SecretValue>;
  max_retries?: number;
  timeout_seconds?: number;
  priority?: number;
  concurrency_policy?: "allow" | "forbid" | "replace";
  max_concurrency?: number;
  run_once?: boolean;
  resources?: Resources;
  retry?: RetryPolicy;
  misfire_policy?: "run_once" | "run_all" | "skip";
  after?: After[];
  notify?: Notify[];
}

export interface RecentRun {
  id: string | number;
  status: ExecutionStatus;
  scheduled_at?: string;
  finished_at?: string | null;
  exit_code?: number | null;
}

export interface Job extends JobSpec {
  id: string;
  owner_id: string;
  status: JobStatus;
  next_run_at?: string | null;
  created_at: string;
  updated_at: string;
  version?: number;
  /** Plain English ("every second"); empty for one-offs. Added by the server. */
  schedule_description?: string;
  /** Newest first, with `?recent=N`. */
  recent_runs?: RecentRun[];
  warnings?: string[];
}

export interface StepResult {
  name: string;
  exit_code?: number | null;
  duration_ms?: number | null;
  started_at?: string | null;
  finished_at?: string | null;
  status?: string;
  [k: string]: unknown;
}

export interface Execution {
  id: string;
  job_id: string;
  attempt: number;
  status: ExecutionStatus;
  trigger?: Trigger;
  scheduled_at?: string | null;
  run_at?: string | null;
  started_at?: string | null;
  finished_at?: string | null;
  exit_code?: number | null;
  worker_id?: string | null;
  log_url?: string | null;
  error?: string | null;
  lateness_ms?: number | null;
  cold_start?: boolean | null;
  steps?: StepResult[] | null;
  checkpoint?: string | null;
  log_bytes?: number | null;
  log_removed_at?: string | null;
  [k: string]: unknown;
}

export interface Percentiles {
  p50?: number | null;
  p95?: number | null;
  p99?: number | null;
  max?: number | null;
}

export interface JobStats {
  runs: number;
  succeeded: number;
  failed: number;
  success_rate: number | null;
  duration_ms: Percentiles;
  lateness_ms: Percentiles;
  last: ExecutionStatus[];
}

export interface Stats extends JobStats {
  success_rate_last_hour?: number | null;
  jobs: Partial<Record<JobStatus, number>>;
  executions: {
    last_hour: Partial<Record<ExecutionStatus, number>>;
    last_day: Partial<Record<ExecutionStatus, number>>;
  };
  runs_per_minute: { minute: string; runs: number }[];
}

export interface Preview {
  next: string[];
  next_local?: string[];
  description: string;
  warnings: string[];
}

export interface DeadLetter {
  id: string;
  job_id: string;
  /** The job's name (also for a job deleted since). */
  job_name?: string;
  execution_id: string;
  reason: string;
  attempts: number;
  created_at: string;
}

export interface Delivery {
  target: string;
  format?: string;
  status: string;
  attempts: number;
  next_attempt_at?: string | null;
  last_error?: string | null;
  last_status_code?: number | null;
  delivered_at?: string | null;
}

export interface Alert {
  id: string;
  job_id: string;
  execution_id?: string | null;
  kind: string;
  created_at: string;
  summary?: string;
  event?: Record<string, unknown>;
  deliveries: Delivery[];
}

export interface ClusterMember {
  id: string;
  address?: string;
  [k: string]: unknown;
}
export interface ClusterScheduler extends ClusterMember {
  shards: number[];
}
export interface ClusterWorker extends ClusterMember {
  capacity: number;
  running: number;
  runtime?: string;
  /** Asked to stop (a deploy): it takes nothing more and leaves once its runs end. */
  stopping?: boolean;
}
export interface Cluster {
  leader: string | null;
  epoch?: number;
  coordinators: (string | ClusterMember)[];
  schedulers: ClusterScheduler[];
  workers: ClusterWorker[];
  /** member id -> host:port of its metrics server ("gateway" for the gateway). */
  metrics?: Record<string, string>;
  /** member id -> "ok" | "not answering: ..." (probed by the gateway), for every member in `metrics`. */
  health?: Record<string, string>;
  [k: string]: unknown;
}

export interface User {
  id: string;
  name: string;
  email: string;
  created_at?: string;
}

// ---------- errors ----------

/** An API error: `{"error": {"code", "message", "field"?}}` and its HTTP status. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

// ---------- the token (for this tab only) ----------

export function getToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}
export function setToken(token: string | null): void {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

type Listener = () => void;
const unauthorizedListeners = new Set<Listener>();
/** Called on any 401 from a route that needed the token (the app goes to /login). */
export function onUnauthorized(fn: Listener): () => void {
  unauthorizedListeners.add(fn);
  return () => unauthorizedListeners.delete(fn);
}

// ---------- transport ----------

interface RequestOptions {
  method?: string;
  body?: unknown;
  /** Send this text as is, with this content type (the YAML form). */
  raw?: { text: string; contentType: string };
  query?: Record<string, string | number | boolean | undefined | null>;
  auth?: boolean;
  signal?: AbortSignal;
}

export function buildUrl(path: string, query?: RequestOptions["query"]): string {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v !== undefined && v !== null && v !== "") qs.set(k, String(v));
  }
  const s = qs.toString();
  return `${API_BASE}${path}${s ? `?${s}` : ""}`;
}

function headers(opts: RequestOptions): Headers {
  const h = new Headers();
  if (opts.raw) h.set("Content-Type", opts.raw.contentType);
  else if (opts.body !== undefined) h.set("Content-Type", "application/json");
  const token = getToken();
  if (opts.auth !== false && token) h.set("Authorization", `Bearer ${token}`);
  return h;
}

async function toError(res: Response, auth: boolean): Promise<ApiError> {
  let code = "http_" + res.status;
  let message = res.statusText || `HTTP ${res.status}`;
  let field: string | undefined;
  try {
    const body = await res.json();
    if (body && typeof body === "object" && body.error) {
      code = body.error.code ?? code;
      message = body.error.message ?? message;
      field = body.error.field ?? undefined;
    } else if (body && typeof body.detail === "string") {
      message = body.detail;
    }
  } catch {
    /* not JSON */
  }
  if (res.status === 401 && auth) {
    setToken(null);
    unauthorizedListeners.forEach((fn) => fn());
  }
  return new ApiError(res.status, code, message, field);
}

/** Fetch a route; resolve with the Response when 2xx, else throw an ApiError. */
export async function send(path: string, opts: RequestOptions = {}): Promise<Response> {
  const res = await fetch(buildUrl(path, opts.query), {
    method: opts.method ?? (opts.body !== undefined || opts.raw ? "POST" : "GET"),
    headers: headers(opts),
    body: opts.raw ? opts.raw.text : opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
    signal: opts.signal,
  });
  if (!res.ok) throw await toError(res, opts.auth !== false);
  return res;
}

async function json<T>(path: string, opts: RequestOptions = {}): Promise<T> {
  const res = await send(path, opts);
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

// ---------- auth ----------

export const signup = (name: string, email: string, password: string) =>
  json<User>("/auth/signup", { body: { name, email, password }, auth: false });

export async function login(email: string, password: string) {
  const r = await json<{ token: string; expires_at: string }>("/auth/login", {
    body: { email, password },
    auth: false,
  });
  setToken(r.token);
  return r;
}

export async function logout(): Promise<void> {
  try {
    await send("/auth/logout", { method: "POST", auth: true });
  } catch {
    /* the token may already be dead: we drop it anyway */
  } finally {
    setToken(null);
  }
}

export const me = () => json<User>("/me");

// ---------- jobs ----------

export interface ListJobsParams {
  status?: string;
  /** Names containing it (any case). */
  q?: string;
  /** Jobs whose latest ended run failed (or timed out) / succeeded. */
  result?: "failed" | "succeeded" | "";
  limit?: number;
  page_token?: string;
  recent?: number;
}
export const listJobs = (p: ListJobsParams = {}) =>
  json<{ jobs: Job[]; next_page_token?: string }>("/jobs", { query: { ...p } });

export const getJob = (id: string) => json<Job>(`/jobs/${encodeURIComponent(id)}`);
export const createJob = (spec: JobSpec) => json<Job>("/jobs", { body: spec });
export const createJobsYaml = (yaml: string) =>
  json<{ jobs: Job[] } | Job>("/jobs", { raw: { text: yaml, contentType: "application/yaml" } });
export const replaceJob = (id: string, spec: JobSpec) =>
  json<Job>(`/jobs/${encodeURIComponent(id)}`, { method: "PUT", body: spec });
export const patchJob = (id: string, fields: Partial<JobSpec>) =>
  json<Job>(`/jobs/${encodeURIComponent(id)}`, { method: "PATCH", body: fields });
export const deleteJob = (id: string) =>
  json<void>(`/jobs/${encodeURIComponent(id)}`, { method: "DELETE" });
export const runJob = (id: string) =>
  json<Execution>(`/jobs/${encodeURIComponent(id)}/run`, { method: "POST" });
export const pauseJob = (id: string) =>
  json<Job>(`/jobs/${encodeURIComponent(id)}/pause`, { method: "POST" });
export const resumeJob = (id: string) =>
  json<Job>(`/jobs/${encodeURIComponent(id)}/resume`, { method: "POST" });
export const jobExecutions = (id: string, p: { limit?: number; page_token?: string; status?: string } = {}) =>
  json<{ executions: Execution[]; next_page_token?: string }>(`/jobs/${encodeURIComponent(id)}/executions`, {
    query: { ...p },
  });
export const jobStats = (id: string) => json<JobStats>(`/jobs/${encodeURIComponent(id)}/stats`);

export const previewSchedule = (
  p: { schedule: string; timezone?: string; count?: number },
  signal?: AbortSignal,
) => json<Preview>("/schedules/preview", { body: p, signal });

// ---------- executions ----------

export const listExecutions = (p: { job_id?: string; status?: string; worker_id?: string; limit?: number; page_token?: string } = {}) =>
  json<{ executions: Execution[]; next_page_token?: string }>("/executions", { query: { ...p } });
export const getExecution = (id: string) => json<Execution>(`/executions/${encodeURIComponent(id)}`);
export const cancelExecution = (id: string) =>
  json<unknown>(`/executions/${encodeURIComponent(id)}/cancel`, { method: "POST" });

/** The console output as stored (the whole text). */
export async function executionLogs(id: string, signal?: AbortSignal): Promise<string> {
  const res = await send(`/executions/${encodeURIComponent(id)}/logs`, { signal });
  return res.text();
}

/**
 * Follow the console output while the run lasts: `onChunk` gets each piece of
 * text as it arrives; resolves when the server ends the stream (the run ended).
 * fetch + ReadableStream, since EventSource cannot send the bearer header.
 */
export async function followExecutionLogs(
  id: string,
  onChunk: (text: string) => void,
  signal?: AbortSignal,
): Promise<void> {
  const res = await send(`/executions/${encodeURIComponent(id)}/logs`, { query: { follow: true }, signal });
  if (!res.body) {
    onChunk(await res.text());
    return;
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    if (value) onChunk(value);
  }
}

// ---------- dead letters, alerts, stats, cluster ----------

export const listDeadLetters = () =>
  json<{ dead_letters: DeadLetter[]; next_page_token?: string }>("/dead-letters");
export const replayDeadLetter = (id: string) =>
  json<Execution>(`/dead-letters/${encodeURIComponent(id)}/replay`, { method: "POST" });
export const discardDeadLetter = (id: string) =>
  json<void>(`/dead-letters/${encodeURIComponent(id)}`, { method: "DELETE" });

export const listAlerts = (p: { job_id?: string; limit?: number } = {}) =>
  json<{ alerts: Alert[]; next_page_token?: string }>("/alerts", { query: { ...p } });

export const getStats = () => json<Stats>("/stats");
export const getCluster = () => json<Cluster>("/cluster");
