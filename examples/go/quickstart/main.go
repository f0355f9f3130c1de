// Command quickstart is cronfleet's Go example client: it signs up (or finds
// the account already there), logs in, creates a job that runs once now, and
// lists that job's executions until one has finished, over the public gRPC
// API (cronfleet.v1.JobService) with the stubs in gen/go/cronfleet/v1.
//
// Build it with examples/go/build.sh (Debian's Go and Go libraries, GOPATH
// mode, no module proxy), then:
//
//	quickstart -addr 127.0.0.1:50051 -email ann@example.com -password correct-horse
//
// Each step prints one line, "key: field=value ...", so a script can read it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	cronfleetv1 "cronfleet/gen/go/cronfleet/v1"
)

// The error code the server names in its trailers (API.md's codes), beside
// the gRPC status.
const errorCodeKey = "cronfleet-error-code"

func main() {
	addr := flag.String("addr", "127.0.0.1:50051", "the gateway's gRPC address")
	name := flag.String("name", "Go example", "the account's display name")
	email := flag.String("email", "", "the account's email (required)")
	password := flag.String("password", "", "the account's password, 8 characters or more (required)")
	jobName := flag.String("job", "hello-from-go", "the job's name")
	command := flag.String("command", "echo hello from go", "the shell command the job runs")
	wait := flag.Duration("wait", 30*time.Second, "how long to wait for the run to finish")
	flag.Parse()
	if *email == "" || *password == "" {
		fmt.Fprintln(os.Stderr, "quickstart: -email and -password are required")
		os.Exit(2)
	}
	if err := run(*addr, *name, *email, *password, *jobName, *command, *wait); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(addr, name, email, password, jobName, command string, wait time.Duration) error {
	dialCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The public API listens in plaintext on loopback in a local cluster;
	// put it behind TLS (grpc.WithTransportCredentials) anywhere else.
	conn, err := grpc.DialContext(dialCtx, addr, grpc.WithInsecure(), grpc.WithBlock())
	if err != nil {
		return fmt.Errorf("connect to %s: %w", addr, err)
	}
	defer conn.Close()
	api := cronfleetv1.NewJobServiceClient(conn)

	user, err := signup(api, name, email, password)
	if err != nil {
		return err
	}
	if user != nil {
		fmt.Printf("signed up: user_id=%s email=%s\n", user.Id, user.Email)
	} else {
		fmt.Printf("signed up: already email=%s\n", email)
	}

	ctx, cancel := call()
	login, err := api.Login(ctx, &cronfleetv1.LoginRequest{Email: email, Password: password})
	cancel()
	if err != nil {
		return describe("log in", err)
	}
	fmt.Printf("logged in: expires_at=%s\n", login.ExpiresAt.AsTime().Format(time.RFC3339))
	// Every later call carries the token as "authorization: Bearer <token>".
	authed := func() (context.Context, context.CancelFunc) {
		ctx, cancel := call()
		return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+login.Token), cancel
	}

	ctx, cancel = authed()
	// No schedule and no run_at: the job runs once, now.
	job, err := api.CreateJob(ctx, &cronfleetv1.CreateJobRequest{
		Spec: &cronfleetv1.JobSpec{Name: jobName, Command: command},
	})
	cancel()
	if err != nil {
		return describe("create the job", err)
	}
	fmt.Printf("job created: id=%s name=%s status=%s\n", job.Id, job.Spec.Name, job.Status)

	deadline := time.Now().Add(wait)
	for {
		ctx, cancel = authed()
		page, err := api.ListExecutions(ctx, &cronfleetv1.ListExecutionsRequest{JobId: job.Id})
		cancel()
		if err != nil {
			return describe("list the job's executions", err)
		}
		if finished := finishedRun(page.Executions); finished != nil || time.Now().After(deadline) {
			for _, e := range page.Executions {
				printExecution(e)
			}
			if finished == nil {
				return fmt.Errorf("no run of job %s finished within %s", job.Id, wait)
			}
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// signup creates the account; nil and no error when the email already has one.
func signup(api cronfleetv1.JobServiceClient, name, email, password string) (*cronfleetv1.User, error) {
	ctx, cancel := call()
	defer cancel()
	var trailer metadata.MD
	user, err := api.Signup(ctx, &cronfleetv1.SignupRequest{Name: name, Email: email, Password: password},
		grpc.Trailer(&trailer))
	if err == nil {
		return user, nil
	}
	if code := trailer.Get(errorCodeKey); len(code) > 0 && code[0] == "conflict" {
		return nil, nil
	}
	return nil, describe("sign up", err)
}

func finishedRun(runs []*cronfleetv1.Execution) *cronfleetv1.Execution {
	for _, e := range runs {
		if e.Status != "scheduled" && e.Status != "running" {
			return e
		}
	}
	return nil
}

func printExecution(e *cronfleetv1.Execution) {
	exit := "none"
	if e.ExitCode != nil {
		exit = fmt.Sprint(e.GetExitCode())
	}
	fmt.Printf("execution: id=%s attempt=%d status=%s exit_code=%s scheduled_at=%s\n",
		e.Id, e.Attempt, e.Status, exit, e.ScheduledAt.AsTime().Format(time.RFC3339Nano))
}

func call() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 10*time.Second)
}

func describe(what string, err error) error {
	s := status.Convert(err)
	if s.Code() == codes.Unavailable {
		return fmt.Errorf("%s: the gateway is unavailable: %s", what, s.Message())
	}
	return fmt.Errorf("%s: %s: %s", what, s.Code(), s.Message())
}
