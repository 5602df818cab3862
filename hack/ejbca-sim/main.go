// Command ejbca-sim serves the EJBCA REST API simulator (internal/ejbcasim)
// until SIGINT or SIGTERM, for demos and manual testing against a "real"
// EJBCA endpoint without one. It writes the credentials a client needs into
// --out:
//
//	ca.crt       CA bundle that verifies the server (and the token endpoint)
//	client.crt   an administrator's client certificate
//	client.key   its key (PKCS#8, mode 0600)
//	token        a static bearer token
//	oauth.json   {"token_url","client_id","client_secret"} for client credentials
//
// --preset NAME picks the EJBCA version to behave as (community-9,
// enterprise-8, enterprise-9; default enterprise-9); the choice is printed at
// start.
//
// Counters: GET /sim/counters. Approve a pending request as an administrator
// (presets with the approval REST API):
//
//	curl --cacert ca.crt --cert client.crt --key client.key -H 'Content-Type: application/json' \
//	  -d '{"approve":true,"comment":"ok"}' https://127.0.0.1:8443/ejbca/ejbca-rest-api/v1/approval/ID/process
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "ejbca-sim:", err)
		os.Exit(1)
	}
}

// run serves until ctx ends.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("ejbca-sim", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8443", "address to listen on")
	out := fs.String("out", "", "directory to write ca.crt, client.crt, client.key, token and oauth.json into (required)")
	latency := fs.Duration("latency", 0, "latency added to every call")
	approval := fs.String("approval-required", "APPROVAL", "comma-separated certificate profiles that require approval (empty for none; ignored by presets without approvals)")
	tokenLifetime := fs.Duration("token-lifetime", time.Hour, "lifetime of OAuth2 access tokens")
	preset := fs.String("preset", ejbcasim.DefaultPreset, "EJBCA version to behave as: "+strings.Join(ejbcasim.PresetNames(), ", "))
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("--out is required")
	}
	if _, err := ejbcasim.PresetBehaviour(*preset); err != nil {
		return err
	}

	profiles := []string{}
	for _, p := range strings.Split(*approval, ",") {
		if p = strings.TrimSpace(p); p != "" {
			profiles = append(profiles, p)
		}
	}
	sim, err := ejbcasim.Start(ejbcasim.Config{
		Addr:                        *addr,
		Latency:                     *latency,
		ApprovalCertificateProfiles: profiles,
		TokenLifetime:               *tokenLifetime,
		Preset:                      *preset,
	})
	if err != nil {
		return err
	}
	defer sim.Close()

	if err := sim.WriteCredentials(*out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "EJBCA simulator listening on %s\n", sim.URL())
	fmt.Fprintf(stdout, "  preset:     %s %+v\n", sim.Preset(), sim.Behaviour())
	fmt.Fprintf(stdout, "  REST API:   %s\n", sim.BaseURL())
	fmt.Fprintf(stdout, "  token URL:  %s\n", sim.TokenURL())
	fmt.Fprintf(stdout, "  counters:   %s/sim/counters\n", sim.URL())
	fmt.Fprintf(stdout, "  credentials in %s\n", *out)

	<-ctx.Done()
	fmt.Fprintln(stdout, "shutting down")
	return nil
}
