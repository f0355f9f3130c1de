import { lazy, useEffect } from "react";
import { Navigate, Route, Routes, useLocation, useNavigate } from "react-router-dom";
import { useQueryClient } from "@tanstack/react-query";
import { getToken, onUnauthorized } from "./api";
import { Layout } from "./components/Layout";
import { LoginPage, SignupPage } from "./pages/Auth";
import { JobsPage } from "./pages/Jobs";
import { JobFormPage } from "./pages/JobForm";
import { DeadLettersPage } from "./pages/DeadLetters";
import { AlertsPage } from "./pages/Alerts";
import { ClusterPage } from "./pages/Cluster";

// The pages with charts (recharts) load when first opened.
const OverviewPage = lazy(() => import("./pages/Overview").then((m) => ({ default: m.OverviewPage })));
const JobPage = lazy(() => import("./pages/Job").then((m) => ({ default: m.JobPage })));
const RunPage = lazy(() => import("./pages/Run").then((m) => ({ default: m.RunPage })));

function RequireAuth({ children }: { children: React.ReactNode }) {
  const location = useLocation();
  if (!getToken()) {
    const next = location.pathname + location.search;
    return <Navigate to={`/login${next !== "/" ? `?next=${encodeURIComponent(next)}` : ""}`} replace />;
  }
  return <>{children}</>;
}

function NotFound() {
  return (
    <>
      <h1>Not found</h1>
      <p>There is no page here.</p>
    </>
  );
}

export function App() {
  const navigate = useNavigate();
  const qc = useQueryClient();
  // Any 401 (expired or revoked token): back to the login page.
  useEffect(
    () =>
      onUnauthorized(() => {
        qc.clear();
        const here = window.location.pathname + window.location.search;
        if (!window.location.pathname.startsWith("/login")) {
          navigate(`/login?expired=1${here !== "/" ? `&next=${encodeURIComponent(here)}` : ""}`, { replace: true });
        }
      }),
    [navigate, qc],
  );
  return (
    <Routes>
      <Route path="/login" element={<LoginPage />} />
      <Route path="/signup" element={<SignupPage />} />
      <Route
        element={
          <RequireAuth>
            <Layout />
          </RequireAuth>
        }
      >
        <Route index element={<OverviewPage />} />
        <Route path="jobs" element={<JobsPage />} />
        <Route path="jobs/new" element={<JobFormPage />} />
        <Route path="jobs/:id" element={<JobPage />} />
        <Route path="jobs/:id/edit" element={<JobFormPage />} />
        <Route path="runs/:id" element={<RunPage />} />
        <Route path="dead-letters" element={<DeadLettersPage />} />
        <Route path="alerts" element={<AlertsPage />} />
        <Route path="cluster" element={<ClusterPage />} />
        <Route path="*" element={<NotFound />} />
      </Route>
    </Routes>
  );
}
