import { useQuery } from "@tanstack/react-query";
import * as api from "../api";
import type { ClusterMember } from "../api";
import { Empty, ErrorBox, Loading } from "../components/Feedback";

/** A member's health as the gateway probed it: "ok" in green, anything else (the reason) in red. */
export function Health({ h }: { h: string | undefined }) {
  if (!h) return <span className="muted">unknown</span>;
  if (h === "ok") return <span className="badge tone-ok">ok</span>;
  return <span className="health-bad tone-text-bad">{h}</span>;
}

/** [0,2,4,5,6,7] -> "0, 2, 4–7" */
export function ranges(ns: number[]): string {
  const s = [...ns].sort((a, b) => a - b);
  const out: string[] = [];
  for (let i = 0; i < s.length; ) {
    let j = i;
    while (j + 1 < s.length && s[j + 1] === s[j] + 1) j++;
    out.push(j > i ? `${s[i]}–${s[j]}` : String(s[i]));
    i = j + 1;
  }
  return out.join(", ");
}

const asMember = (c: string | ClusterMember): ClusterMember => (typeof c === "string" ? { id: c } : c);

export function ClusterPage() {
  const q = useQuery({ queryKey: ["cluster"], queryFn: api.getCluster, refetchInterval: 2000 });
  if (q.isPending) return <Loading what="Loading the cluster" />;
  if (q.error)
    return (
      <>
        <h1>Cluster</h1>
        <ErrorBox error={q.error} title="Could not load the cluster" />
      </>
    );
  const c = q.data;
  const metrics = c.metrics ?? {};
  const coordinators = c.coordinators.map(asMember);
  const health = c.health ?? {};
  const down = Object.entries(health).filter(([, h]) => h !== "ok").map(([m]) => m);
  const totalShards = c.schedulers.reduce((n, s) => n + s.shards.length, 0);
  const cap = c.workers.reduce((n, w) => n + (w.capacity ?? 0), 0);
  const run = c.workers.reduce((n, w) => n + (w.running ?? 0), 0);
  const stopping = c.workers.filter((w) => w.stopping).length;
  return (
    <>
      <h1>Cluster</h1>
      <div className="cards">
        <div className="card stat">
          <div className="label">Leader</div>
          <div className="big-num ident" title={c.leader ?? undefined}>
            {c.leader ?? <span className="tone-text-bad">none</span>}
          </div>
          {c.epoch !== undefined ? <div className="small muted">epoch {c.epoch}</div> : null}
        </div>
        <div className="card stat">
          <div className="label">Schedulers</div>
          <div className="big-num">{c.schedulers.length}</div>
          <div className="small muted">{totalShards} shards held</div>
        </div>
        <div className="card stat">
          <div className="label">Workers</div>
          <div className="big-num">{c.workers.length}</div>
          <div className="small muted">
            {run} running of {cap} slots
            {stopping ? `, ${stopping} stopping` : ""}
          </div>
        </div>
        <div className="card stat">
          <div className="label">Gateway</div>
          <div className="big-num">
            {health.gateway === undefined ? (
              <span className="muted">unknown</span>
            ) : health.gateway === "ok" ? (
              <span className="tone-text-ok">ok</span>
            ) : (
              <span className="tone-text-bad">down</span>
            )}
          </div>
          <div className="small muted wrap">
            {health.gateway && health.gateway !== "ok" ? health.gateway : metrics.gateway ? `metrics ${metrics.gateway}` : null}
          </div>
        </div>
      </div>
      {down.length ? (
        <p className="error-box" role="status">
          Not answering: {down.join(", ")}.
        </p>
      ) : null}

      <section aria-labelledby="coord-h">
        <h2 id="coord-h">Coordinators</h2>
        {coordinators.length === 0 ? (
          <Empty>No coordinator is registered.</Empty>
        ) : (
          <div className="table-wrap">
            <table aria-label="Coordinators" className="cardify">
              <thead>
                <tr>
                  <th>Id</th>
                  <th>Role</th>
                  <th>Health</th>
                  <th>Metrics</th>
                </tr>
              </thead>
              <tbody>
                {coordinators.map((m) => (
                  <tr key={m.id}>
                    <td className="mono name">{m.id}</td>
                    <td data-label="Role">{m.id === c.leader ? <span className="badge tone-live">leader</span> : "standby"}</td>
                    <td data-label="Health">
                        <Health h={health[m.id]} />
                      </td>
                    <td data-label="Metrics" className="mono small">{metrics[m.id] ?? "—"}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>

      <section aria-labelledby="sched-h">
        <h2 id="sched-h">Schedulers</h2>
        {c.schedulers.length === 0 ? (
          <Empty>No scheduler is registered: nothing fires.</Empty>
        ) : (
          <div className="table-wrap">
            <table aria-label="Schedulers" className="cardify">
              <thead>
                <tr>
                  <th>Id</th>
                  <th>Shards</th>
                  <th>Address</th>
                  <th>Health</th>
                  <th>Metrics</th>
                </tr>
              </thead>
              <tbody>
                {c.schedulers.map((s) => (
                  <tr key={s.id}>
                    <td className="mono name">{s.id}</td>
                    <td data-label="Shards">
                      <details>
                        <summary>
                          {s.shards.length} shard{s.shards.length === 1 ? "" : "s"}
                        </summary>
                        <span className="small muted mono wrap">{ranges(s.shards)}</span>
                      </details>
                    </td>
                    <td data-label="Address" className="mono small">{s.address ?? "—"}</td>
                    <td data-label="Health">
                        <Health h={health[s.id]} />
                      </td>
                    <td data-label="Metrics" className="mono small">{metrics[s.id] ?? "—"}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>

      <section aria-labelledby="workers-h">
        <h2 id="workers-h">Workers</h2>
        {c.workers.length === 0 ? (
          <Empty>No worker is registered: runs wait.</Empty>
        ) : (
          <div className="table-wrap">
            <table aria-label="Workers" className="cardify">
              <thead>
                <tr>
                  <th>Id</th>
                  <th>Running / capacity</th>
                  <th>Runtime</th>
                  <th>Health</th>
                  <th>Metrics</th>
                </tr>
              </thead>
              <tbody>
                {c.workers.map((w) => {
                  const share = w.capacity ? Math.min(1, w.running / w.capacity) : 0;
                  return (
                    <tr key={w.id}>
                      <td className="mono name">{w.id}</td>
                      <td data-label="Running">
                        <div className="meter-row">
                          <meter min={0} max={w.capacity || 1} value={w.running} aria-label={`${w.id} load`} className={share > 0.9 ? "hot" : ""} />
                          <span className="num">
                            {w.running} / {w.capacity}
                          </span>
                        </div>
                      </td>
                      <td data-label="Runtime">{typeof w.runtime === "string" ? w.runtime : <span className="muted">—</span>}</td>
                      <td data-label="Health">
                        <Health h={health[w.id]} />
                        {w.stopping ? (
                          <span className="badge tone-warn stopping" title="Asked to stop: it takes no new runs and leaves once its runs have ended">
                            stopping
                          </span>
                        ) : null}
                      </td>
                      <td data-label="Metrics" className="mono small">{metrics[w.id] ?? "—"}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </>
  );
}
