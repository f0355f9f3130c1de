import { Link } from "react-router-dom";
import type { RecentRun } from "../api";
import { formatDateTime } from "../lib/time";
import { statusColor, statusText, statusTone } from "./Status";

/**
 * The last runs as a row of small squares, oldest left, newest right, each
 * coloured by outcome and linking to the run. `runs` come newest first (as the
 * API sends them).
 */
export function RunsStrip({ runs, max = 20, label }: { runs: RecentRun[]; max?: number; label?: string }) {
  const shown = runs.slice(0, max).reverse();
  if (!shown.length) return <span className="muted small">no runs yet</span>;
  return (
    <ol className="strip" aria-label={label ?? `Last ${shown.length} runs`}>
      {shown.map((r) => {
        const what = `Run ${r.id}: ${statusText(r.status)}${
          r.exit_code !== undefined && r.exit_code !== null ? ` (exit ${r.exit_code})` : ""
        }${r.scheduled_at ? `, ${formatDateTime(r.scheduled_at, { withZone: true })}` : ""}`;
        return (
          <li key={r.id}>
            <Link
              to={`/runs/${r.id}`}
              className={`cell tone-${statusTone(r.status)} run-${r.status}`}
              style={{ background: statusColor(r.status) }}
              data-status={r.status}
              title={what}
              aria-label={what}
            />
          </li>
        );
      })}
    </ol>
  );
}
