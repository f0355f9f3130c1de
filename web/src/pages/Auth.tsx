import { useState } from "react";
import { Link, useNavigate, useSearchParams } from "react-router-dom";
import { useQueryClient } from "@tanstack/react-query";
import * as api from "../api";

function safeNext(next: string | null): string {
  return next && next.startsWith("/") && !next.startsWith("//") ? next : "/";
}

function FieldMsg({ id, error }: { id: string; error?: string }) {
  return error ? (
    <p className="field-error" id={id}>
      {error}
    </p>
  ) : null;
}

/** Log in with email and password; the token lives in this tab's sessionStorage. */
export function LoginPage() {
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const qc = useQueryClient();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<api.ApiError | Error | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api.login(email, password);
      qc.clear();
      navigate(safeNext(params.get("next")), { replace: true });
    } catch (err) {
      setError(err as Error);
    } finally {
      setBusy(false);
    }
  }
  const field = error instanceof api.ApiError ? error.field : undefined;
  return (
    <div className="auth">
      <form className="card auth-card" onSubmit={submit} noValidate>
        <div className="brand big">
          <span className="logo" aria-hidden="true" /> cronfleet
        </div>
        <h1>Log in</h1>
        {params.get("expired") ? <p className="notice">Your session ended; please log in again.</p> : null}
        {error && !field ? (
          <div className="error-box" role="alert">
            {error.message}
          </div>
        ) : null}
        <label htmlFor="login-email">Email</label>
        <input
          id="login-email"
          type="email"
          autoComplete="email"
          required
          value={email}
          onChange={(e) => setEmail(e.target.value)}
          aria-invalid={field === "email" || undefined}
          aria-describedby={field === "email" ? "login-email-err" : undefined}
        />
        <FieldMsg id="login-email-err" error={field === "email" ? error?.message : undefined} />
        <label htmlFor="login-password">Password</label>
        <input
          id="login-password"
          type="password"
          autoComplete="current-password"
          required
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          aria-invalid={field === "password" || undefined}
          aria-describedby={field === "password" ? "login-password-err" : undefined}
        />
        <FieldMsg id="login-password-err" error={field === "password" ? error?.message : undefined} />
        <button type="submit" className="primary" disabled={busy}>
          Log in
        </button>
        <p className="small">
          No account? <Link to="/signup">Sign up</Link>
        </p>
      </form>
    </div>
  );
}

/** Create an account, then log straight in. */
export function SignupPage() {
  const navigate = useNavigate();
  const qc = useQueryClient();
  const [name, setName] = useState("");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<api.ApiError | Error | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api.signup(name, email, password);
      await api.login(email, password);
      qc.clear();
      navigate("/", { replace: true });
    } catch (err) {
      setError(err as Error);
    } finally {
      setBusy(false);
    }
  }
  const field = error instanceof api.ApiError ? error.field : undefined;
  const known = ["name", "email", "password"];
  const msg = (f: string) => (field === f ? error?.message.replace(new RegExp(`^${f}: `), "") : undefined);
  return (
    <div className="auth">
      <form className="card auth-card" onSubmit={submit} noValidate>
        <div className="brand big">
          <span className="logo" aria-hidden="true" /> cronfleet
        </div>
        <h1>Sign up</h1>
        {error && !(field && known.includes(field)) ? (
          <div className="error-box" role="alert">
            {error.message}
          </div>
        ) : null}
        <label htmlFor="signup-name">Name</label>
        <input id="signup-name" autoComplete="name" required value={name} onChange={(e) => setName(e.target.value)}
          aria-invalid={!!msg("name") || undefined} aria-describedby={msg("name") ? "signup-name-err" : undefined} />
        <FieldMsg id="signup-name-err" error={msg("name")} />
        <label htmlFor="signup-email">Email</label>
        <input id="signup-email" type="email" autoComplete="email" required value={email} onChange={(e) => setEmail(e.target.value)}
          aria-invalid={!!msg("email") || undefined} aria-describedby={msg("email") ? "signup-email-err" : undefined} />
        <FieldMsg id="signup-email-err" error={msg("email")} />
        <label htmlFor="signup-password">Password</label>
        <input id="signup-password" type="password" autoComplete="new-password" required value={password} onChange={(e) => setPassword(e.target.value)}
          aria-invalid={!!msg("password") || undefined} aria-describedby={msg("password") ? "signup-password-err" : undefined} />
        <FieldMsg id="signup-password-err" error={msg("password")} />
        <button type="submit" className="primary" disabled={busy}>
          Sign up
        </button>
        <p className="small">
          Have an account? <Link to="/login">Log in</Link>
        </p>
      </form>
    </div>
  );
}
