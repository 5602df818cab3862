package manager

import (
	"context"

	"github.com/certctl-io/ejbca-issuer/internal/metrics"
)

// leaderGauge sets ejbca_issuer_leader: controller-runtime starts it when
// this process is elected (at once without leader election) and stops it when
// the manager stops, so the gauge is 1 exactly while this process leads. A
// standby exports 0, which lets an alert tell "no leader" from "no process".
type leaderGauge struct{}

func (leaderGauge) NeedLeaderElection() bool { return true }

func (leaderGauge) Start(ctx context.Context) error {
	metrics.Leader.Set(1)
	<-ctx.Done()
	metrics.Leader.Set(0)
	return nil
}
