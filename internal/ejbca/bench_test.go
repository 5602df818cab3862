package ejbca_test

import (
	"context"
	"testing"

	"github.com/certctl-io/ejbca-issuer/internal/ejbcasim"
)

// benchEnroll measures one pkcs10enroll round trip (marshal, TLS on a
// kept-alive connection, the simulator issuing, parsing and checking the
// answer) against an in-process simulator without added latency.
func benchEnroll(b *testing.B, mode authMode, parallel bool) {
	sim := startSim(b, ejbcasim.Config{})
	o := options(b, sim, mode)
	o.MaxIdleConnsPerHost = 64
	c := newClient(b, o)
	csr, _ := simpleCSR(b, "bench.example.com")
	req := enrolment(csr, "bench")
	ctx := context.Background()
	if _, err := c.Enroll(ctx, req); err != nil { // warm up: connection and token
		b.Fatal(err)
	}
	sim.ResetCounters()
	b.ReportAllocs()
	b.ResetTimer()
	if parallel {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.Enroll(ctx, req); err != nil {
					b.Error(err)
					return
				}
			}
		})
	} else {
		for i := 0; i < b.N; i++ {
			if _, err := c.Enroll(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	got := sim.Counters()
	b.ReportMetric(float64(got.TLSHandshakes), "handshakes")
	if mode == modeOAuth2 && got.TokensIssued != 0 {
		b.Errorf("TokensIssued = %d during the benchmark, want 0 (token reused)", got.TokensIssued)
	}
}

func BenchmarkEnrollMTLS(b *testing.B) {
	b.Run("serial", func(b *testing.B) { benchEnroll(b, modeMTLS, false) })
	b.Run("parallel", func(b *testing.B) { benchEnroll(b, modeMTLS, true) })
}

func BenchmarkEnrollOAuth2(b *testing.B) {
	b.Run("serial", func(b *testing.B) { benchEnroll(b, modeOAuth2, false) })
	b.Run("parallel", func(b *testing.B) { benchEnroll(b, modeOAuth2, true) })
}

func BenchmarkEnrollStaticToken(b *testing.B) {
	b.Run("serial", func(b *testing.B) { benchEnroll(b, modeToken, false) })
}

// BenchmarkStatus is the bare round trip, for comparison with enrolment.
func BenchmarkStatus(b *testing.B) {
	sim := startSim(b, ejbcasim.Config{})
	c := clientFor(b, sim, modeMTLS)
	ctx := context.Background()
	if _, err := c.Status(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Status(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
