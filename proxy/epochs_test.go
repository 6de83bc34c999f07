package proxy

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestEpochsRetryFailedWrite: a lease recorded while the state file cannot
// be written is written at the next call, although the route is already
// leased in memory by then; otherwise a process restarted later would
// forward without a lease.
func TestEpochsRetryFailedWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "not-yet") // missing: unwritable even for root
	cfg := filepath.Join(dir, "gateway.yaml")
	failed := prometheus.NewCounter(prometheus.CounterOpts{Name: "test_epochs_write_errors_total"})
	e, err := loadEpochs(cfg, failed)
	if err != nil {
		t.Fatal(err)
	}
	e.routes["r"] = servedRoute{Domain: "d1"}
	if err := e.leased("r"); err == nil {
		t.Fatal("recording a lease in a missing directory reported no error")
	}
	var m dto.Metric
	if err := failed.Write(&m); err != nil {
		t.Fatal(err)
	}
	if n := m.GetCounter().GetValue(); n != 1 {
		t.Fatalf("write errors counted %v, want 1", n)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := e.leased("r"); err != nil { // a renewal
		t.Fatalf("the renewal's write failed: %v", err)
	}
	again, err := loadEpochs(cfg, failed)
	if err != nil {
		t.Fatal(err)
	}
	if !again.fenceStart("r", false).leased {
		t.Fatal("a restarted process does not know the route was leased")
	}
}
