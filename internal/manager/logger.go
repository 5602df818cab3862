package manager

import (
	"io"

	"github.com/go-logr/logr"
	"go.uber.org/zap/zapcore"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// MaxLogLevel is the highest verbosity the manager logs at. client-go logs
// request and response bodies (Secrets included) at level 8, and main routes
// client-go's klog to this logger, so verbosity is capped below that: no
// level prints secret material.
// Level 5 is out too: controller-runtime v0.24's priority queue logs its
// state there while another goroutine changes it (a data race the race
// detector reports).
const MaxLogLevel = 4

// NewLogger returns the manager's logger: JSON or text lines on w, at
// verbosity level (0 info, 1 decisions, 2..4 debug; higher is capped).
func NewLogger(format string, level int, w io.Writer) logr.Logger {
	level = min(max(level, 0), MaxLogLevel)
	return zap.New(zap.WriteTo(w), zap.UseDevMode(false), zap.Level(zapcore.Level(-level)), func(o *zap.Options) {
		if format == "text" {
			o.Encoder = zapcore.NewConsoleEncoder(zapcore.EncoderConfig{
				TimeKey: "ts", LevelKey: "level", NameKey: "logger", MessageKey: "msg",
				EncodeTime: zapcore.ISO8601TimeEncoder, EncodeLevel: zapcore.CapitalLevelEncoder,
				EncodeDuration: zapcore.StringDurationEncoder,
			})
		}
	})
}
