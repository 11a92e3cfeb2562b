// Package zap is the Go peer of crates/log-api/benches/log_event.rs: one
// JSON log event with four fields, zap's production JSON encoder, written
// through a buffered file sink. Run with:
//
//	go test -bench . -run x
package zap

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func newLogger(b *testing.B) (*zap.Logger, func()) {
	b.Helper()
	f, err := os.Create(filepath.Join(b.TempDir(), "zap.log"))
	if err != nil {
		b.Fatal(err)
	}
	sink := &zapcore.BufferedWriteSyncer{
		WS:            zapcore.AddSync(f),
		Size:          256 * 1024,
		FlushInterval: time.Second,
	}
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey = "timestamp"
	enc.MessageKey = "message"
	enc.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), sink, zapcore.InfoLevel)
	logger := zap.New(core)
	return logger, func() {
		_ = logger.Sync()
		_ = sink.Stop()
		_ = f.Close()
	}
}

func BenchmarkJSON4Fields(b *testing.B) {
	logger, done := newLogger(b)
	defer done()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		logger.Info("request handled",
			zap.String("method", "GET"),
			zap.String("path", "/api/v1/namespaces/default/pods"),
			zap.Uint64("status", 200),
			zap.Float64("latency_ms", 1.5),
		)
	}
}

// TestWritesJSON checks the sink really receives one JSON object per event.
func TestWritesJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "check.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	sink := &zapcore.BufferedWriteSyncer{WS: zapcore.AddSync(f)}
	enc := zap.NewProductionEncoderConfig()
	logger := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), sink, zapcore.InfoLevel))
	logger.Info("hello", zap.String("k", "v"))
	if err := logger.Sync(); err != nil {
		t.Fatal(err)
	}
	_ = sink.Stop()
	_ = f.Close()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) == 0 || data[0] != '{' || data[len(data)-1] != '\n' {
		t.Fatalf("not a JSON line: %q", data)
	}
}
