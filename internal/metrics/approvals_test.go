package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestOldestApprovalWait: the gauge follows the earliest wait among those
// still waiting, and is absent when none waits.
func TestOldestApprovalWait(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	oldest := func() (float64, bool) {
		if testutil.CollectAndCount(ApprovalOldestPending) == 0 {
			return 0, false
		}
		return testutil.ToFloat64(ApprovalOldestPending.WithLabelValues()), true
	}
	steps := []struct {
		do   func()
		want float64 // 0: absent
	}{
		{func() { ApprovalWaiting("a", t0.Add(time.Hour)) }, float64(t0.Add(time.Hour).Unix())},
		{func() { ApprovalWaiting("b", t0) }, float64(t0.Unix())},
		{func() { ApprovalWaiting("b", time.Time{}) }, float64(t0.Unix())}, // a zero since keeps what is known
		{func() { ApprovalDone("b") }, float64(t0.Add(time.Hour).Unix())},
		{func() { ApprovalDone("b") }, float64(t0.Add(time.Hour).Unix())},
		{func() { ApprovalDone("a") }, 0},
	}
	for i, s := range steps {
		s.do()
		got, present := oldest()
		if s.want == 0 && present || s.want != 0 && (!present || got != s.want) {
			t.Errorf("step %d: oldest %v (present %v), want %v", i, got, present, s.want)
		}
	}
}
