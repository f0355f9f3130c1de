import {
  Bar,
  BarChart,
  CartesianGrid,
  Legend,
  Line,
  LineChart,
  ResponsiveContainer,
  Tooltip,
  XAxis,
  YAxis,
} from "recharts";
import type { Execution } from "../api";
import { between, formatDateTime, formatDuration, zoneLabel } from "../lib/time";
import { durationAxis, timeAxis } from "../lib/ticks";

const axis = { stroke: "var(--muted)", fontSize: 12 };
const tooltipStyle = {
  contentStyle: { background: "var(--surface)", border: "1px solid var(--border)", color: "var(--text)", borderRadius: 6 },
  labelStyle: { color: "var(--text)" },
};

/** Lateness and duration of each run, by when it started (oldest left). */
export function RunsChart({ executions }: { executions: Execution[] }) {
  const data = executions
    .filter((e) => e.started_at || e.scheduled_at)
    .map((e) => ({
      // When it ran: a retry keeps its first attempt's scheduled time.
      t: new Date((e.started_at ?? e.scheduled_at)!).getTime(),
      id: e.id,
      lateness: e.lateness_ms ?? null,
      duration: between(e.started_at, e.finished_at),
    }))
    .sort((a, b) => a.t - b.t);
  if (data.length < 2)
    return <p className="muted small">The chart appears after a couple of runs.</p>;
  const x = timeAxis(data[0].t, data[data.length - 1].t);
  const yd = durationAxis(data.map((d) => d.duration));
  const yl = durationAxis(data.map((d) => d.lateness));
  return (
    <>
    <div className="chart" role="img" aria-label={`Lateness and duration of the last ${data.length} runs`}>
      <ResponsiveContainer width="100%" height={240}>
        <LineChart data={data} margin={{ top: 8, right: 8, bottom: 0, left: 0 }}>
          <CartesianGrid stroke="var(--grid)" strokeDasharray="3 3" vertical={false} />
          <XAxis dataKey="t" type="number" domain={x.domain} ticks={x.ticks} tickFormatter={x.format} tick={axis} stroke="var(--border)" minTickGap={20} />
          <YAxis yAxisId="d" tick={axis} stroke="var(--border)" domain={yd.domain} ticks={yd.ticks} tickFormatter={yd.format} width={70} interval={0} />
          <YAxis yAxisId="l" orientation="right" tick={axis} stroke="var(--border)" domain={yl.domain} ticks={yl.ticks} tickFormatter={yl.format} width={70} interval={0} />
          <Tooltip
            {...tooltipStyle}
            labelFormatter={(t) => `Started ${formatDateTime(t as number, { withZone: true })}`}
            formatter={(v, name) => [formatDuration(v as number), name]}
          />
          <Legend wrapperStyle={{ fontSize: 12 }} />
          <Line yAxisId="d" type="linear" dataKey="duration" name="Duration (left)" stroke="var(--chart-1)" dot={data.length < 60} strokeWidth={1.5} isAnimationActive={false} connectNulls />
          <Line yAxisId="l" type="linear" dataKey="lateness" name="Lateness (right)" stroke="var(--chart-2)" dot={data.length < 60} strokeWidth={1.5} isAnimationActive={false} connectNulls />
        </LineChart>
      </ResponsiveContainer>
    </div>
    <p className="small muted chart-note">Times in your zone, {zoneLabel()}.</p>
    </>
  );
}

/** Runs per minute over the last hour. */
export function RunsPerMinuteChart({ data }: { data: { minute: string; runs: number }[] }) {
  const rows = data.map((d) => ({ t: new Date(d.minute).getTime(), runs: d.runs }));
  const total = rows.reduce((s, r) => s + r.runs, 0);
  return (
    <>
    <div className="chart" role="img" aria-label={`Runs per minute over the last hour: ${total} runs in all`}>
      <ResponsiveContainer width="100%" height={200}>
        <BarChart data={rows} margin={{ top: 8, right: 8, bottom: 0, left: 0 }}>
          <CartesianGrid stroke="var(--grid)" strokeDasharray="3 3" vertical={false} />
          <XAxis dataKey="t" tickFormatter={(t) => formatDateTime(t, { withDate: false, withSeconds: false })} tick={axis} stroke="var(--border)" minTickGap={30} />
          <YAxis allowDecimals={false} tick={axis} stroke="var(--border)" width={40} />
          <Tooltip {...tooltipStyle} cursor={{ fill: "var(--hover)" }} labelFormatter={(t) => formatDateTime(t as number, { withDate: false, withSeconds: false, withZone: true })} formatter={(v) => [v as number, "runs"]} />
          <Bar dataKey="runs" fill="var(--chart-1)" isAnimationActive={false} />
        </BarChart>
      </ResponsiveContainer>
    </div>
    <p className="small muted chart-note">Minutes in your zone, {zoneLabel()}.</p>
    </>
  );
}
