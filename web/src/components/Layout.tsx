import { Suspense, useEffect, useState } from "react";
import { NavLink, Outlet, useLocation, useNavigate } from "react-router-dom";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import * as api from "../api";
import { Loading } from "./Feedback";

const LINKS = [
  { to: "/", label: "Overview", end: true },
  { to: "/jobs", label: "Jobs", end: false },
  { to: "/dead-letters", label: "Dead letters", end: false },
  { to: "/alerts", label: "Alerts", end: false },
  { to: "/cluster", label: "Cluster", end: false },
];

/** The frame of every signed-in page: the brand, the nav, the user and "Log out". */
export function Layout() {
  const [open, setOpen] = useState(false);
  const location = useLocation();
  const navigate = useNavigate();
  const qc = useQueryClient();
  const me = useQuery({ queryKey: ["me"], queryFn: api.me, staleTime: 60_000 });
  useEffect(() => setOpen(false), [location.pathname]);

  async function logOut() {
    await api.logout();
    qc.clear();
    navigate("/login", { replace: true });
  }

  return (
    <div className="shell">
      <header className="topbar">
        <NavLink to="/" className="brand" aria-label="cronfleet home">
          <span className="logo" aria-hidden="true" />
          cronfleet
        </NavLink>
        <button
          type="button"
          className="menu-toggle"
          aria-expanded={open}
          aria-controls="main-nav"
          onClick={() => setOpen((o) => !o)}
        >
          Menu
        </button>
        <nav id="main-nav" aria-label="Main" className={open ? "open" : ""}>
          <ul>
            {LINKS.map((l) => (
              <li key={l.to}>
                <NavLink to={l.to} end={l.end}>
                  {l.label}
                </NavLink>
              </li>
            ))}
          </ul>
          <div className="who">
            {me.data ? (
              <span className="muted small" title={me.data.email}>
                {me.data.name}
              </span>
            ) : null}
            <button type="button" onClick={logOut}>
              Log out
            </button>
          </div>
        </nav>
      </header>
      <main className="content">
        <Suspense fallback={<Loading />}>
          <Outlet />
        </Suspense>
      </main>
    </div>
  );
}
