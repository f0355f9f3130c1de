import { useState } from "react";
import { Link } from "react-router-dom";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import * as api from "../api";
import type { DeadLetter } from "../api";
import { DateTime, Relative } from "../components/Time";
import { Confirm } from "../components/Confirm";
import { Empty, ErrorBox, Loading } from "../components/Feedback";
import { shortId } from "../lib/useJobNames";

/** Runs whose retries are spent: replay them (a new attempt chain) or discard them. */
export function DeadLettersPage() {
  const qc = useQueryClient();
  const [note, setNote] = useState<React.ReactNode>(null);
  const [error, setError] = useState<unknown>(null);
  const [discarding, setDiscarding] = useState<DeadLetter | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const q = useQuery({ queryKey: ["dead-letters"], queryFn: api.listDeadLetters, refetchInterval: 2000 });

  async function replay(d: DeadLetter) {
    setBusy(d.id);
    setError(null);
    setNote(null);
    try {
      const e = await api.replayDeadLetter(d.id);
      setNote(
        <>
          Replayed {d.job_name || "the job"} as <Link to={`/runs/${e.id}`}>run #{e.id}</Link>.
        </>,
      );
    } catch (err) {
      setError(err);
    } finally {
      setBusy(null);
      qc.invalidateQueries({ queryKey: ["dead-letters"] });
    }
  }
  async function discard(d: DeadLetter) {
    setBusy(d.id);
    setError(null);
    setNote(null);
    try {
      await api.discardDeadLetter(d.id);
      setNote("Discarded.");
      setDiscarding(null);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(null);
      qc.invalidateQueries({ queryKey: ["dead-letters"] });
    }
  }

  const items = q.data?.dead_letters ?? [];
  return (
    <>
      <h1>Dead letters</h1>
      <p className="muted">Runs that failed with their retries spent. Replay one to start a new attempt chain.</p>
      {note ? <p className="notice" role="status">{note}</p> : null}
      <ErrorBox error={error} title="Not done" />
      <ErrorBox error={q.error} title="Could not load dead letters" />
      {q.isPending ? (
        <Loading />
      ) : items.length === 0 ? (
        <Empty>
          <p>No dead letters. Every failed run either recovered or was handled.</p>
        </Empty>
      ) : (
        <div className="table-wrap">
          <table aria-label="Dead letters" className="cardify">
            <thead>
              <tr>
                <th>When</th>
                <th>Job</th>
                <th>Run</th>
                <th>Reason</th>
                <th>Attempts</th>
                <th>
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {items.map((d) => (
                <tr key={d.id}>
                  <td data-label="When" className="nowrap">
                    <DateTime value={d.created_at} withDate="auto" />
                    <div className="small muted">
                      <Relative value={d.created_at} />
                    </div>
                  </td>
                  <td data-label="Job">
                    <Link to={`/jobs/${d.job_id}`}>{d.job_name || shortId(d.job_id)}</Link>
                  </td>
                  <td data-label="Run">
                    <Link to={`/runs/${d.execution_id}`}>#{d.execution_id}</Link>
                  </td>
                  <td data-label="Reason" className="wrap">{d.reason}</td>
                  <td data-label="Attempts" className="num">{d.attempts}</td>
                  <td data-label="" className="nowrap">
                    <button type="button" disabled={busy === d.id} onClick={() => replay(d)} aria-label={`Replay run ${d.execution_id}`}>
                      Replay
                    </button>{" "}
                    <button type="button" className="danger" disabled={busy === d.id} onClick={() => setDiscarding(d)} aria-label={`Discard run ${d.execution_id}`}>
                      Discard
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {discarding ? (
        <Confirm
          title={`Discard the dead letter of ${discarding.job_name || "the job"}'s run #${discarding.execution_id}?`}
          confirmLabel="Discard"
          busy={busy === discarding.id}
          onCancel={() => setDiscarding(null)}
          onConfirm={() => discard(discarding)}
        >
          <p>It leaves this list; the run's record stays.</p>
        </Confirm>
      ) : null}
    </>
  );
}
