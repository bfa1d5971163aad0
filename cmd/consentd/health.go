package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"time"
)

// healthTimeout bounds the check: a consentd that takes longer to say it is ready is
// not, for a container engine that runs the check every few seconds.
const healthTimeout = 5 * time.Second

// health asks a running consentd whether it is ready (GET /readyz) and fails unless
// it answers 200, naming the checks that did not pass. It is the container image's
// HEALTHCHECK, which has no shell or curl to do it.
func health(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("consentd health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", defaultReadyURL(), "the readiness endpoint (default: /readyz on $CONSENTD_ADMIN_ADDR, else on $CONSENTD_ADDR, on this machine)")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return fmt.Errorf("consentd health: --url %q: %w", *url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("consentd health: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	var body struct {
		Checks map[string]string `json:"checks"`
	}
	json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body)
	msg := fmt.Sprintf("consentd health: %s answered %s", *url, resp.Status)
	names := make([]string, 0, len(body.Checks))
	for name, result := range body.Checks {
		if result != "ok" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		msg += fmt.Sprintf("\n  %s: %s", name, body.Checks[name])
	}
	return errors.New(msg)
}

// defaultReadyURL is /readyz on the listener consentd serve opens with the same
// environment: the admin one if there is one, on this machine whatever interface it
// listens on.
func defaultReadyURL() string {
	addr := envOr("CONSENTD_ADMIN_ADDR", envOr("CONSENTD_ADDR", ":8080"))
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr + "/readyz" // the request names what is wrong with it
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/readyz"
}
