// Package zap is the Go peer of crates/log-api/benches/log_event.rs: one
// JSON log event with four fields, zap's production JSON encoder, written
// to a file through a 64 KiB buffer (the size of kubepkg's file buffer).
// Two set-ups, each timed until every record is in the file (the flush is
// inside the timed loop):
//
//   - BenchmarkSyncJSON4Fields: zap's usual synchronous core: the caller
//     encodes and writes into a BufferedWriteSyncer.
//   - BenchmarkAsyncJSON4Fields: the caller encodes and hands a copy of the
//     line to one writer goroutine through a bounded channel of 8192
//     records that blocks when full, which writes and flushes when it runs
//     out of work: the design of kubepkg's background writer.
//
// Both report `cpu-ns/op`, the process's CPU time (user + system, every
// thread: the writer goroutine and the garbage collector included) per
// record. Run with:
//
//	go test -bench . -run x
package zap

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

const bufSize = 64 * 1024

func encoder() zapcore.Encoder {
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey = "timestamp"
	enc.MessageKey = "message"
	enc.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	return zapcore.NewJSONEncoder(enc)
}

func create(b *testing.B, name string) *os.File {
	b.Helper()
	f, err := os.Create(filepath.Join(b.TempDir(), name))
	if err != nil {
		b.Fatal(err)
	}
	return f
}

// cpuNanos is the CPU time this process has used so far.
func cpuNanos(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func event(logger *zap.Logger) {
	logger.Info("request handled",
		zap.String("method", "GET"),
		zap.String("path", "/api/v1/namespaces/default/pods"),
		zap.Uint64("status", 200),
		zap.Float64("latency_ms", 1.5),
	)
}

// run times b.N events plus the flush that gets them into the file.
func run(b *testing.B, logger *zap.Logger) {
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuNanos(b)
	for i := 0; i < b.N; i++ {
		event(logger)
	}
	if err := logger.Sync(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuNanos(b)-cpu)/float64(b.N), "cpu-ns/op")
}

func BenchmarkSyncJSON4Fields(b *testing.B) {
	f := create(b, "zap-sync.log")
	sink := &zapcore.BufferedWriteSyncer{
		WS:            zapcore.AddSync(f),
		Size:          bufSize,
		FlushInterval: time.Second,
	}
	logger := zap.New(zapcore.NewCore(encoder(), sink, zapcore.InfoLevel))
	run(b, logger)
	_ = sink.Stop()
	_ = f.Close()
}

// asyncWriter hands each line to one writer goroutine.
type asyncWriter struct {
	lines chan message
	done  chan struct{}
}

type message struct {
	line  []byte
	flush chan struct{}
}

func newAsyncWriter(w io.Writer, capacity int) *asyncWriter {
	a := &asyncWriter{lines: make(chan message, capacity), done: make(chan struct{})}
	go func() {
		defer close(a.done)
		buf := bufio.NewWriterSize(w, bufSize)
		for m := range a.lines {
			for {
				if m.flush != nil {
					_ = buf.Flush()
					close(m.flush)
				} else {
					_, _ = buf.Write(m.line)
				}
				select {
				case next, ok := <-a.lines:
					if !ok {
						_ = buf.Flush()
						return
					}
					m = next
					continue
				default:
				}
				break
			}
			// Out of work: push everything out.
			_ = buf.Flush()
		}
		_ = buf.Flush()
	}()
	return a
}

// Write queues a copy: zap reuses its buffer once Write returns.
func (a *asyncWriter) Write(p []byte) (int, error) {
	line := make([]byte, len(p))
	copy(line, p)
	a.lines <- message{line: line}
	return len(p), nil
}

// Sync waits until everything queued before is written and flushed.
func (a *asyncWriter) Sync() error {
	ack := make(chan struct{})
	a.lines <- message{flush: ack}
	<-ack
	return nil
}

func (a *asyncWriter) close() {
	close(a.lines)
	<-a.done
}

func BenchmarkAsyncJSON4Fields(b *testing.B) {
	f := create(b, "zap-async.log")
	w := newAsyncWriter(f, 8192)
	logger := zap.New(zapcore.NewCore(encoder(), w, zapcore.InfoLevel))
	run(b, logger)
	w.close()
	_ = f.Close()
}

// TestWritesJSON checks both sinks really receive one JSON object per event.
func TestWritesJSON(t *testing.T) {
	for _, async := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "check.log")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		var ws zapcore.WriteSyncer
		var stop func()
		if async {
			w := newAsyncWriter(f, 16)
			ws, stop = w, w.close
		} else {
			s := &zapcore.BufferedWriteSyncer{WS: zapcore.AddSync(f), Size: bufSize}
			ws, stop = s, func() { _ = s.Stop() }
		}
		logger := zap.New(zapcore.NewCore(encoder(), ws, zapcore.InfoLevel))
		for i := 0; i < 3; i++ {
			event(logger)
		}
		if err := logger.Sync(); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		stop()
		_ = f.Close()
		if len(data) == 0 || data[0] != '{' || data[len(data)-1] != '\n' {
			t.Fatalf("async=%v: not JSON lines: %q", async, data)
		}
		if n := len(splitLines(data)); n != 3 {
			t.Fatalf("async=%v: %d lines, want 3", async, n)
		}
	}
}

func splitLines(data []byte) [][]byte {
	var out [][]byte
	start := 0
	for i, c := range data {
		if c == '\n' {
			out = append(out, data[start:i])
			start = i + 1
		}
	}
	return out
}
