import { useQuery } from "@tanstack/react-query";
import * as api from "../api";
import type { ClusterMember, MemberHealth } from "../api";
import { Empty, ErrorBox, Loading } from "../components/Feedback";

function healthText(h: MemberHealth | undefined): string | null {
  if (h === undefined || h === null) return null;
  if (typeof h === "string") return h;
  if (typeof h.status === "string") return h.status;
  if (typeof h.healthy === "boolean") return h.healthy ? "healthy" : "unhealthy";
  return null;
}

function Health({ h }: { h: MemberHealth | undefined }) {
  const t = healthText(h);
  if (!t) return <span className="muted">—</span>;
  const good = /^(ok|healthy|up|serving|ready|alive)$/i.test(t);
  return <span className={`badge tone-${good ? "ok" : "bad"}`}>{t}</span>;
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
  const healthz = useQuery({
    queryKey: ["healthz"],
    queryFn: async () => (await fetch("/healthz")).ok,
    refetchInterval: 5000,
    retry: false,
  });
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
  const anyHealth = [...coordinators, ...c.schedulers, ...c.workers].some((m) => healthText(m.health));
  const totalShards = c.schedulers.reduce((n, s) => n + s.shards.length, 0);
  const cap = c.workers.reduce((n, w) => n + (w.capacity ?? 0), 0);
  const run = c.workers.reduce((n, w) => n + (w.running ?? 0), 0);
  return (
    <>
      <h1>Cluster</h1>
      <div className="cards">
        <div className="card stat">
          <div className="label">Leader</div>
          <div className="big-num">{c.leader ?? <span className="tone-text-bad">none</span>}</div>
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
          </div>
        </div>
        <div className="card stat">
          <div className="label">Gateway</div>
          <div className="big-num">
            {healthz.data === undefined ? "…" : healthz.data ? <span className="tone-text-ok">healthy</span> : <span className="tone-text-bad">unhealthy</span>}
          </div>
          <div className="small muted">/healthz</div>
        </div>
      </div>
      {!anyHealth ? <p className="small muted">The cluster reply carries no per-member health; members listed here are the ones registered as alive.</p> : null}

      <section aria-labelledby="coord-h">
        <h2 id="coord-h">Coordinators</h2>
        {coordinators.length === 0 ? (
          <Empty>No coordinator is registered.</Empty>
        ) : (
          <div className="table-wrap">
            <table aria-label="Coordinators">
              <thead>
                <tr>
                  <th>Id</th>
                  <th>Role</th>
                  {anyHealth ? <th>Health</th> : null}
                  <th>Metrics</th>
                </tr>
              </thead>
              <tbody>
                {coordinators.map((m) => (
                  <tr key={m.id}>
                    <td className="mono">{m.id}</td>
                    <td>{m.id === c.leader ? <span className="badge tone-live">leader</span> : "standby"}</td>
                    {anyHealth ? (
                      <td>
                        <Health h={m.health} />
                      </td>
                    ) : null}
                    <td className="mono small">{metrics[m.id] ?? "—"}</td>
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
            <table aria-label="Schedulers">
              <thead>
                <tr>
                  <th>Id</th>
                  <th>Shards</th>
                  <th>Address</th>
                  {anyHealth ? <th>Health</th> : null}
                  <th>Metrics</th>
                </tr>
              </thead>
              <tbody>
                {c.schedulers.map((s) => (
                  <tr key={s.id}>
                    <td className="mono">{s.id}</td>
                    <td>
                      <details>
                        <summary>
                          {s.shards.length} shard{s.shards.length === 1 ? "" : "s"}
                        </summary>
                        <span className="small muted mono wrap">{ranges(s.shards)}</span>
                      </details>
                    </td>
                    <td className="mono small">{s.address ?? "—"}</td>
                    {anyHealth ? (
                      <td>
                        <Health h={s.health} />
                      </td>
                    ) : null}
                    <td className="mono small">{metrics[s.id] ?? "—"}</td>
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
            <table aria-label="Workers">
              <thead>
                <tr>
                  <th>Id</th>
                  <th>Running / capacity</th>
                  <th>Runtime</th>
                  {anyHealth ? <th>Health</th> : null}
                  <th>Metrics</th>
                </tr>
              </thead>
              <tbody>
                {c.workers.map((w) => {
                  const share = w.capacity ? Math.min(1, w.running / w.capacity) : 0;
                  return (
                    <tr key={w.id}>
                      <td className="mono">{w.id}</td>
                      <td>
                        <div className="meter-row">
                          <meter min={0} max={w.capacity || 1} value={w.running} aria-label={`${w.id} load`} className={share > 0.9 ? "hot" : ""} />
                          <span className="num">
                            {w.running} / {w.capacity}
                          </span>
                        </div>
                      </td>
                      <td>{typeof w.runtime === "string" ? w.runtime : <span className="muted">—</span>}</td>
                      {anyHealth ? (
                        <td>
                          <Health h={w.health} />
                        </td>
                      ) : null}
                      <td className="mono small">{metrics[w.id] ?? "—"}</td>
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
