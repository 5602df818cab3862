package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// ProfileDifferences counts certificates that differ from their request
// because of the issuer's configuration (reported on the issuer once an
// hour, not on each request), by issuer and cause.
var ProfileDifferences = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "ejbca_issuer_profile_differences_total",
	Help: "Certificates that differ from their request because of the issuer's configuration, by issuer kind, namespace, name and cause (ValidityFromProfile: valid longer than requested; UsageNotForKey: a requested key usage the key type cannot have).",
}, []string{"kind", "namespace", "name", "cause"})

func init() { crmetrics.Registry.MustRegister(ProfileDifferences) }
