import { render } from "@testing-library/react";
import { MemoryRouter, Route, Routes } from "react-router-dom";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { vi } from "vitest";

/** Render inside a router (at `path`) and a fresh query client. */
export function renderWithApp(ui: React.ReactElement, { path = "/", routes }: { path?: string; routes?: React.ReactNode } = {}) {
  const qc = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <QueryClientProvider client={qc}>
      <MemoryRouter initialEntries={[path]}>
        <Routes>
          <Route path="*" element={ui} />
          {routes}
        </Routes>
      </MemoryRouter>
    </QueryClientProvider>,
  );
}

export const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

type Handler = (url: URL, init: RequestInit) => Response | Promise<Response>;

/** Stub fetch: the first route whose "METHOD /path" matches answers. */
export function mockFetch(routes: Record<string, Handler>) {
  const fn = vi.fn(async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const url = new URL(String(input), "http://localhost");
    const key = `${(init.method ?? "GET").toUpperCase()} ${url.pathname}`;
    const h = routes[key];
    if (!h) return json({ error: { code: "not_found", message: `no mock for ${key}` } }, 404);
    return h(url, init);
  });
  vi.stubGlobal("fetch", fn);
  return fn;
}
