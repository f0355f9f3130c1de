import { useQuery } from "@tanstack/react-query";
import * as api from "../api";

/** id -> name of the caller's jobs (deleted ones are not listed: their id shows instead). */
export function useJobNames(): Map<string, string> {
  const q = useQuery({ queryKey: ["jobs", "all-names"], queryFn: () => api.listJobs({ limit: 500 }), staleTime: 10_000 });
  return new Map((q.data?.jobs ?? []).map((j) => [j.id, j.name]));
}
export const shortId = (id: string) => (id.length > 12 ? id.slice(0, 8) + "…" : id);
