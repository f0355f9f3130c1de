import { useEffect, useMemo, useState } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { get, useFieldArray, useForm } from "react-hook-form";
import * as api from "../api";
import type { Job, JobSpec } from "../api";
import { ErrorBox, Loading } from "../components/Feedback";
import { SchedulePreviewView, useSchedulePreview } from "../components/SchedulePreview";
import {
  emptyForm,
  formToSpec,
  jobToForm,
  messageForField,
  NOTIFY_ON,
  resolveErrorField,
  RETRY_ON,
  type FormValues,
} from "../lib/jobForm";
import { statusText } from "../components/Status";

const YAML_EXAMPLE = `jobs:
  - name: nightly-report
    schedule: "0 30 2 * * *"
    timezone: Europe/Paris
    command: ./report.sh
    max_retries: 2
`;

let zonesCache: string[] | null = null;
function timeZones(): string[] {
  if (!zonesCache) {
    try {
      zonesCache = ["UTC", ...Intl.supportedValuesOf("timeZone").filter((z) => z !== "UTC")];
    } catch {
      zonesCache = ["UTC"];
    }
  }
  return zonesCache;
}

/** Create (/jobs/new) or edit (/jobs/:id/edit) a job. */
export function JobFormPage() {
  const { id } = useParams();
  const editing = !!id;
  const job = useQuery({ queryKey: ["job", id], queryFn: () => api.getJob(id!), enabled: editing });
  if (editing && job.isPending) return <Loading what="Loading the job" />;
  if (editing && job.error) return <ErrorBox error={job.error} title="Could not load the job" />;
  return <JobForm job={editing ? job.data : undefined} />;
}

function FieldError({ name, errors }: { name: string; errors: object }) {
  const e = get(errors, name) as { message?: string } | undefined;
  if (!e?.message) return null;
  return (
    <p className="field-error" id={fid(name) + "-err"} role="alert">
      {e.message}
    </p>
  );
}
const fid = (name: string) => "f-" + name.replace(/\./g, "-");

export function JobForm({ job, onSaved }: { job?: Job; onSaved?: (job: Job) => void }) {
  const navigate = useNavigate();
  const qc = useQueryClient();
  const [mode, setMode] = useState<"form" | "yaml">("form");
  const [yaml, setYaml] = useState("");
  const [topError, setTopError] = useState<Error | null>(null);
  const initial = useMemo(() => (job ? jobToForm(job) : emptyForm()), [job]);
  const {
    register,
    control,
    handleSubmit,
    setError,
    clearErrors,
    watch,
    getValues,
    formState: { errors, isSubmitting },
  } = useForm<FormValues>({ defaultValues: initial });
  const steps = useFieldArray({ control, name: "steps" });
  const env = useFieldArray({ control, name: "env" });
  const notify = useFieldArray({ control, name: "notify" });
  const after = useFieldArray({ control, name: "after" });

  const kind = watch("kind");
  const schedule = watch("schedule") ?? "";
  const timezone = watch("timezone") ?? "";
  const preview = useSchedulePreview(schedule, timezone);
  const otherJobs = useQuery({ queryKey: ["jobs", "all-names"], queryFn: () => api.listJobs({ limit: 500 }), staleTime: 10_000 });
  const upstream = (otherJobs.data?.jobs ?? []).filter((j) => j.id !== job?.id);

  useEffect(() => {
    if (topError) document.getElementById("form-top-error")?.scrollIntoView?.({ block: "center" });
  }, [topError]);

  // Every input: its id, and when the server named it, aria-invalid and the message's id.
  const reg = (name: string) => {
    const bad = !!(get(errors, name) as { message?: string } | undefined)?.message;
    return {
      ...register(name as keyof FormValues),
      id: fid(name),
      "aria-invalid": bad || undefined,
      "aria-describedby": bad ? fid(name) + "-err" : undefined,
    };
  };
  const err = (name: string) => <FieldError name={name} errors={errors} />;

  function showServerError(e: unknown) {
    if (e instanceof api.ApiError && e.field) {
      const where = resolveErrorField(e.field, getValues());
      if (where) {
        setError(where as keyof FormValues, { type: "server", message: messageForField(e.message, e.field) }, { shouldFocus: true });
        setTopError(null);
        // A field with no focusable input (a list): bring its message into view.
        setTimeout(() => document.getElementById(fid(where) + "-err")?.scrollIntoView?.({ block: "center" }), 0);
        return;
      }
    }
    setTopError(e as Error);
  }

  async function saved(j: Job) {
    await qc.invalidateQueries({ queryKey: ["jobs"] });
    qc.setQueryData(["job", j.id], j);
    if (onSaved) onSaved(j);
    else navigate(`/jobs/${j.id}`);
  }

  const onValid = async (values: FormValues) => {
    setTopError(null);
    const keep: Partial<JobSpec> = job?.http ? { http: job.http } : {};
    const spec = formToSpec(values, keep);
    try {
      const j = job ? await api.replaceJob(job.id, spec) : await api.createJob(spec);
      await saved(j);
    } catch (e) {
      showServerError(e);
    }
  };

  const [yamlBusy, setYamlBusy] = useState(false);
  async function submitYaml(e: React.FormEvent) {
    e.preventDefault();
    setTopError(null);
    setYamlBusy(true);
    try {
      const r = await api.createJobsYaml(yaml);
      const created = "jobs" in r ? r.jobs : [r];
      await qc.invalidateQueries({ queryKey: ["jobs"] });
      if (created.length === 1) await saved(created[0]);
      else navigate("/jobs");
    } catch (err) {
      setTopError(err as Error);
    } finally {
      setYamlBusy(false);
    }
  }

  const title = job ? `Edit ${job.name}` : "New job";
  return (
    <>
      <div className="page-head">
        <h1>{title}</h1>
        {job ? (
          <Link to={`/jobs/${job.id}`} className="button">
            Back to the job
          </Link>
        ) : null}
      </div>
      {!job ? (
        <div className="segmented" role="group" aria-label="How to describe the job">
          <button type="button" aria-pressed={mode === "form"} onClick={() => setMode("form")}>
            Form
          </button>
          <button type="button" aria-pressed={mode === "yaml"} onClick={() => setMode("yaml")}>
            YAML
          </button>
        </div>
      ) : null}

      <div id="form-top-error">
        <ErrorBox error={topError} title={job ? "Not saved" : "Not created"} />
      </div>

      {mode === "yaml" ? (
        <form className="job-form" onSubmit={submitYaml} noValidate>
          <section className="card">
            <label htmlFor="job-yaml">YAML</label>
            <p className="hint" id="job-yaml-hint">
              A <code>jobs:</code> list, as the CLI and API take it. Every job in it is created at once.
            </p>
            <textarea
              id="job-yaml"
              className="mono"
              rows={16}
              spellCheck={false}
              value={yaml}
              placeholder={YAML_EXAMPLE}
              aria-describedby="job-yaml-hint"
              onChange={(e) => setYaml(e.target.value)}
            />
          </section>
          <div className="form-actions">
            <button type="submit" className="primary" disabled={yamlBusy}>
              Create
            </button>
            <Link to="/jobs" className="button">
              Cancel
            </Link>
          </div>
        </form>
      ) : (
        <form
          className="job-form"
          noValidate
          onSubmit={(e) => {
            clearErrors();
            return handleSubmit(onValid)(e);
          }}
        >
          <fieldset className="card">
            <legend>Basics</legend>
            <div className="field">
              <label htmlFor={fid("name")}>Name</label>
              <input {...reg("name")} aria-required="true" autoComplete="off" placeholder="required, e.g. nightly-report" />
              {err("name")}
            </div>
            <div className="segmented small" role="radiogroup" aria-label="What it runs">
              <label>
                <input type="radio" value="command" {...register("kind")} /> One shell line
              </label>
              <label>
                <input type="radio" value="steps" {...register("kind")} /> Several steps
              </label>
            </div>
            {job?.http ? (
              <p className="notice small">
                This job calls <code>{job.http.method ?? "GET"} {job.http.url}</code>; that part is kept as it is.
              </p>
            ) : null}
            {kind === "steps" ? (
              <div className="list" id={fid("steps") + "-list"}>
                {err("steps")}
                {steps.fields.map((f, i) => (
                  <div className="list-row" key={f.id}>
                    <div className="field narrow">
                      <label htmlFor={fid(`steps.${i}.name`)}>Step {i + 1}</label>
                      <input {...reg(`steps.${i}.name`)} />
                      {err(`steps.${i}.name`)}
                    </div>
                    <div className="field grow">
                      <label htmlFor={fid(`steps.${i}.run`)}>Step {i + 1} runs</label>
                      <input className="mono" {...reg(`steps.${i}.run`)} />
                      {err(`steps.${i}.run`)}
                    </div>
                    <button type="button" className="icon" aria-label={`Remove step ${i + 1}`} onClick={() => steps.remove(i)}>
                      ✕
                    </button>
                  </div>
                ))}
                <button type="button" onClick={() => steps.append({ name: "", run: "" })}>
                  Add step
                </button>
              </div>
            ) : (
              <div className="field">
                <label htmlFor={fid("command")}>Command</label>
                <textarea className="mono" rows={3} spellCheck={false} {...reg("command")} placeholder="echo hello" />
                <p className="hint">Run with <code>sh -c</code>.</p>
                {err("command")}
              </div>
            )}
            <div className="grid2">
              <div className="field">
                <label htmlFor={fid("image")}>Image</label>
                <input {...reg("image")} placeholder="(the worker's default)" />
                <p className="hint">Container image, with the docker runtime.</p>
                {err("image")}
              </div>
              <div className="field">
                <label htmlFor={fid("container")}>Container</label>
                <select {...reg("container")}>
                  <option value="">default (per run)</option>
                  <option value="per_run">per_run: a fresh container each run</option>
                  <option value="per_job">per_job: one long-lived container</option>
                </select>
                {err("container")}
              </div>
            </div>
          </fieldset>

          <fieldset className="card">
            <legend>Schedule</legend>
            <div className="grid2">
              <div className="field">
                <label htmlFor={fid("schedule")}>Schedule</label>
                <input className="mono" {...reg("schedule")} placeholder="*/5 * * * *   or   @every 90s" autoComplete="off" spellCheck={false} />
                <p className="hint">Cron (5, 6 with seconds first, or 7 fields), @daily…, @every 90s. Empty: run once.</p>
                {err("schedule")}
                {!get(errors, "schedule") && preview.error ? (
                  <p className="field-error" role="alert" id={fid("schedule") + "-preview-err"}>
                    {messageForField(preview.error.message, (preview.error as api.ApiError).field)}
                  </p>
                ) : null}
              </div>
              <div className="field">
                <label htmlFor={fid("timezone")}>Timezone</label>
                <input {...reg("timezone")} list="tz-list" autoComplete="off" spellCheck={false} />
                <datalist id="tz-list">
                  {timeZones().map((z) => (
                    <option key={z} value={z} />
                  ))}
                </datalist>
                {err("timezone")}
              </div>
            </div>
            <SchedulePreviewView
              preview={preview.error ? undefined : preview.data}
              timezone={preview.timezone}
              pending={preview.pending}
              failed={!!preview.error}
              empty="No schedule: the job runs once, now (or at “Run at”)."
            />
            <div className="grid3">
              <div className="field">
                <label htmlFor={fid("run_at")}>Run at</label>
                <input type="datetime-local" step="1" {...reg("run_at")} />
                <p className="hint">For a one-off, in the job's timezone.</p>
                {err("run_at")}
              </div>
              <div className="field">
                <label htmlFor={fid("start_at")}>Start at</label>
                <input type="datetime-local" step="1" {...reg("start_at")} />
                {err("start_at")}
              </div>
              <div className="field">
                <label htmlFor={fid("end_at")}>End at</label>
                <input type="datetime-local" step="1" {...reg("end_at")} />
                {err("end_at")}
              </div>
            </div>
            <div className="grid2">
              <div className="field check-field">
                <input type="checkbox" {...reg("run_once")} />
                <label htmlFor={fid("run_once")}>Run once (at the next match, then complete)</label>
                {err("run_once")}
              </div>
              <div className="field">
                <label htmlFor={fid("misfire_policy")}>Misfire policy</label>
                <select {...reg("misfire_policy")}>
                  <option value="">default (run once)</option>
                  <option value="run_once">run_once: missed fires run once</option>
                  <option value="run_all">run_all: every missed fire runs</option>
                  <option value="skip">skip: missed fires are skipped</option>
                </select>
                {err("misfire_policy")}
              </div>
            </div>
          </fieldset>

          <fieldset className="card">
            <legend>Execution</legend>
            <div className="grid3">
              <div className="field">
                <label htmlFor={fid("timeout_seconds")}>Timeout (seconds)</label>
                <input type="number" inputMode="numeric" {...reg("timeout_seconds")} placeholder="3600" />
                {err("timeout_seconds")}
              </div>
              <div className="field">
                <label htmlFor={fid("priority")}>Priority (0–9)</label>
                <input type="number" inputMode="numeric" {...reg("priority")} placeholder="5" />
                {err("priority")}
              </div>
              <div className="field">
                <label htmlFor={fid("delivery")}>Delivery</label>
                <select {...reg("delivery")}>
                  <option value="">default (at least once)</option>
                  <option value="at_least_once">at_least_once</option>
                  <option value="at_most_once">at_most_once</option>
                </select>
                {err("delivery")}
              </div>
              <div className="field">
                <label htmlFor={fid("concurrency_policy")}>Concurrency policy</label>
                <select {...reg("concurrency_policy")}>
                  <option value="">default (allow)</option>
                  <option value="allow">allow: runs may overlap</option>
                  <option value="forbid">forbid: skip while one runs</option>
                  <option value="replace">replace: cancel the running one</option>
                </select>
                {err("concurrency_policy")}
              </div>
              <div className="field">
                <label htmlFor={fid("max_concurrency")}>Max concurrency</label>
                <input type="number" inputMode="numeric" {...reg("max_concurrency")} />
                {err("max_concurrency")}
              </div>
            </div>
            <h3 className="sub">Resources</h3>
            {err("resources")}
            <div className="grid3">
              <div className="field">
                <label htmlFor={fid("resources.cpus")}>CPUs</label>
                <input type="number" step="any" {...reg("resources.cpus")} />
                {err("resources.cpus")}
              </div>
              <div className="field">
                <label htmlFor={fid("resources.memory_mb")}>Memory (MB)</label>
                <input type="number" {...reg("resources.memory_mb")} />
                {err("resources.memory_mb")}
              </div>
              <div className="field">
                <label htmlFor={fid("resources.pids")}>Max processes (pids)</label>
                <input type="number" {...reg("resources.pids")} />
                {err("resources.pids")}
              </div>
            </div>
            <h3 className="sub">Environment</h3>
            <div className="list" id={fid("env") + "-list"}>
              {err("env")}
              {env.fields.length === 0 ? <p className="muted small">No variables.</p> : null}
              {env.fields.map((f, i) => (
                <div className="list-row" key={f.id}>
                  <div className="field narrow">
                    <label htmlFor={fid(`env.${i}.name`)}>Variable {i + 1}</label>
                    <input className="mono" {...reg(`env.${i}.name`)} autoComplete="off" />
                    {err(`env.${i}.name`)}
                  </div>
                  <div className="field grow">
                    <label htmlFor={fid(`env.${i}.value`)}>Value {i + 1}</label>
                    <input
                      className="mono"
                      type={watch(`env.${i}.secret`) ? "password" : "text"}
                      {...reg(`env.${i}.value`)}
                      autoComplete="off"
                    />
                    {err(`env.${i}.value`)}
                  </div>
                  <div className="field check-field">
                    <input type="checkbox" {...reg(`env.${i}.secret`)} />
                    <label htmlFor={fid(`env.${i}.secret`)}>Secret {i + 1}</label>
                  </div>
                  <button type="button" className="icon" aria-label={`Remove variable ${i + 1}`} onClick={() => env.remove(i)}>
                    ✕
                  </button>
                </div>
              ))}
              {env.fields.some((_, i) => watch(`env.${i}.secret`)) ? (
                <p className="muted small">A secret is sealed at rest and shown as *** everywhere; leave *** to keep it.</p>
              ) : null}
              <button type="button" onClick={() => env.append({ name: "", value: "", secret: false })}>
                Add variable
              </button>
            </div>
          </fieldset>

          <fieldset className="card">
            <legend>Retries</legend>
            {err("retry")}
            <div className="grid3">
              <div className="field">
                <label htmlFor={fid("max_retries")}>Max retries</label>
                <input type="number" {...reg("max_retries")} placeholder="0" />
                {err("max_retries")}
              </div>
              <div className="field">
                <label htmlFor={fid("retry.backoff_seconds")}>Backoff (seconds)</label>
                <input type="number" step="any" {...reg("retry.backoff_seconds")} />
                {err("retry.backoff_seconds")}
              </div>
              <div className="field">
                <label htmlFor={fid("retry.max_backoff_seconds")}>Max backoff (seconds)</label>
                <input type="number" step="any" {...reg("retry.max_backoff_seconds")} />
                {err("retry.max_backoff_seconds")}
              </div>
              <div className="field">
                <label htmlFor={fid("retry.multiplier")}>Multiplier</label>
                <input type="number" step="any" {...reg("retry.multiplier")} />
                {err("retry.multiplier")}
              </div>
              <div className="field">
                <label htmlFor={fid("retry.jitter")}>Jitter (0–1)</label>
                <input type="number" step="any" {...reg("retry.jitter")} />
                {err("retry.jitter")}
              </div>
              <div className="field">
                <label htmlFor={fid("retry.never_exit_codes")}>Never retry exit codes</label>
                <input {...reg("retry.never_exit_codes")} placeholder="e.g. 2, 64" inputMode="numeric" />
                {err("retry.never_exit_codes")}
              </div>
            </div>
            <fieldset className="checks" id={fid("retry.on")} aria-invalid={get(errors, "retry.on") ? true : undefined}>
              <legend>Retry on</legend>
              {RETRY_ON.map((o) => (
                <label key={o}>
                  <input type="checkbox" value={o} {...register("retry.on")} /> {statusText(o)}
                </label>
              ))}
              {err("retry.on")}
            </fieldset>
          </fieldset>

          <fieldset className="card">
            <legend>Notifications</legend>
            <div className="list" id={fid("notify") + "-list"}>
              {err("notify")}
              {notify.fields.length === 0 ? <p className="muted small">No notifications.</p> : null}
              {notify.fields.map((f, i) => (
                <div className="list-block" key={f.id}>
                  <div className="list-row">
                    <div className="field grow">
                      <label htmlFor={fid(`notify.${i}.webhook`)}>Webhook {i + 1} URL</label>
                      <input type="url" {...reg(`notify.${i}.webhook`)} placeholder="https://hooks.example.com/…" />
                      {err(`notify.${i}.webhook`)}
                    </div>
                    <div className="field narrow">
                      <label htmlFor={fid(`notify.${i}.format`)}>Webhook {i + 1} format</label>
                      <select {...reg(`notify.${i}.format`)}>
                        <option value="json">json (signed)</option>
                        <option value="slack">slack</option>
                      </select>
                      {err(`notify.${i}.format`)}
                    </div>
                    <button type="button" className="icon" aria-label={`Remove webhook ${i + 1}`} onClick={() => notify.remove(i)}>
                      ✕
                    </button>
                  </div>
                  <fieldset className="checks" id={fid(`notify.${i}.on`)}>
                    <legend>Webhook {i + 1}: notify on</legend>
                    {NOTIFY_ON.map((o) => (
                      <label key={o}>
                        <input type="checkbox" value={o} {...register(`notify.${i}.on` as const)} /> {statusText(o)}
                      </label>
                    ))}
                    {err(`notify.${i}.on`)}
                  </fieldset>
                </div>
              ))}
              <button type="button" onClick={() => notify.append({ webhook: "", on: ["failed"], format: "json" })}>
                Add webhook
              </button>
            </div>
          </fieldset>

          <fieldset className="card">
            <legend>Upstream jobs</legend>
            <p className="hint">Fire this job when an upstream job's run ends.</p>
            <div className="list" id={fid("after") + "-list"}>
              {err("after")}
              {after.fields.map((f, i) => (
                <div className="list-row" key={f.id}>
                  <div className="field grow">
                    <label htmlFor={fid(`after.${i}.job_id`)}>Upstream job {i + 1}</label>
                    <select {...reg(`after.${i}.job_id`)}>
                      <option value="">choose a job…</option>
                      {upstream.map((j) => (
                        <option key={j.id} value={j.id}>
                          {j.name}
                        </option>
                      ))}
                      {f.job_id && !upstream.some((j) => j.id === f.job_id) ? <option value={f.job_id}>{f.job_id}</option> : null}
                    </select>
                    {err(`after.${i}.job_id`)}
                  </div>
                  <div className="field narrow">
                    <label htmlFor={fid(`after.${i}.on`)}>When its run ends in</label>
                    <select {...reg(`after.${i}.on`)}>
                      <option value="success">success</option>
                      <option value="failure">failure</option>
                      <option value="always">either way</option>
                    </select>
                    {err(`after.${i}.on`)}
                  </div>
                  <button type="button" className="icon" aria-label={`Remove upstream job ${i + 1}`} onClick={() => after.remove(i)}>
                    ✕
                  </button>
                </div>
              ))}
              {upstream.length === 0 && !otherJobs.isPending ? <p className="muted small">You have no other job to chain after.</p> : null}
              <button type="button" disabled={upstream.length === 0} onClick={() => after.append({ job_id: "", on: "success" })}>
                Add upstream job
              </button>
            </div>
          </fieldset>

          <div className="form-actions sticky">
            <button type="submit" className="primary" disabled={isSubmitting}>
              {job ? "Save" : "Create"}
            </button>
            <Link to={job ? `/jobs/${job.id}` : "/jobs"} className="button">
              Cancel
            </Link>
          </div>
        </form>
      )}
    </>
  );
}
