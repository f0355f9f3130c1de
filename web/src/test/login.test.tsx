import { describe, expect, it } from "vitest";
import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { Route } from "react-router-dom";
import { LoginPage } from "../pages/Auth";
import { getToken } from "../api";
import { json, mockFetch, renderWithApp } from "./helpers";

describe("login form", () => {
  it("logs in, keeps the token in sessionStorage and goes on", async () => {
    const fetch = mockFetch({
      "POST /api/v1/auth/login": () => json({ token: "tok-1", expires_at: "2030-01-01T00:00:00Z" }),
    });
    renderWithApp(<LoginPage />, { path: "/login?next=%2Fjobs", routes: <Route path="/jobs" element={<h1>Jobs page</h1>} /> });
    await userEvent.type(screen.getByLabelText("Email"), "ann@example.com");
    await userEvent.type(screen.getByLabelText("Password"), "correct-horse");
    await userEvent.click(screen.getByRole("button", { name: "Log in" }));
    await screen.findByRole("heading", { name: "Jobs page" });
    expect(getToken()).toBe("tok-1");
    const [url, init] = fetch.mock.calls[0];
    expect(String(url)).toBe("/api/v1/auth/login");
    expect(JSON.parse(String(init!.body))).toEqual({ email: "ann@example.com", password: "correct-horse" });
    expect(new Headers(init!.headers).get("Authorization")).toBeNull();
  });

  it("shows the server's message when the credentials are wrong", async () => {
    mockFetch({
      "POST /api/v1/auth/login": () => json({ error: { code: "unauthenticated", message: "wrong email or password" } }, 401),
    });
    renderWithApp(<LoginPage />, { path: "/login" });
    await userEvent.type(screen.getByLabelText("Email"), "ann@example.com");
    await userEvent.type(screen.getByLabelText("Password"), "nope-nope");
    await userEvent.click(screen.getByRole("button", { name: "Log in" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("wrong email or password");
    await waitFor(() => expect(getToken()).toBeNull());
    expect(screen.getByRole("heading", { level: 1, name: "Log in" })).toBeInTheDocument();
  });
});
