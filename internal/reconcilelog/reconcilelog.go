// Package reconcilelog gives controllers a logger per reconcile that costs
// nothing until a line is written.
package reconcilelog

import (
	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// For is a controller's LogConstructor. controller-runtime's own
// encodes the request's name into a new logger for every reconcile, which
// at start-up (a reconcile per request in the cluster, most logging
// nothing) was a tenth of what the manager allocated; here the values are
// attached only when a line is actually written.
func For(base logr.Logger, controller string) func(*reconcile.Request) logr.Logger {
	base = base.WithValues("controller", controller)
	return func(req *reconcile.Request) logr.Logger {
		if req == nil {
			return base
		}
		return base.WithSink(&lazyValues{sink: base.GetSink(), values: []any{"namespace", req.Namespace, "name", req.Name}})
	}
}

// lazyValues holds key/value pairs for sink until something is logged.
type lazyValues struct {
	sink   logr.LogSink
	values []any
}

// Init does nothing: sink was initialised when its logger was made.
func (l *lazyValues) Init(logr.RuntimeInfo) {}

func (l *lazyValues) Enabled(level int) bool { return l.sink.Enabled(level) }

func (l *lazyValues) Info(level int, msg string, kv ...any) {
	l.materialize().Info(level, msg, kv...)
}

func (l *lazyValues) Error(err error, msg string, kv ...any) {
	l.materialize().Error(err, msg, kv...)
}

func (l *lazyValues) WithValues(kv ...any) logr.LogSink {
	return &lazyValues{sink: l.sink, values: append(append(make([]any, 0, len(l.values)+len(kv)), l.values...), kv...)}
}

func (l *lazyValues) WithName(name string) logr.LogSink {
	return &lazyValues{sink: l.sink.WithName(name), values: l.values}
}

// materialize is sink with the values, one frame deeper for the caller.
func (l *lazyValues) materialize() logr.LogSink {
	s := l.sink
	if d, ok := s.(logr.CallDepthLogSink); ok {
		s = d.WithCallDepth(1)
	}
	return s.WithValues(l.values...)
}
