package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestSetRoute(t *testing.T) {
	data, err := os.ReadFile("testdata/switchover.yaml")
	if err != nil {
		t.Fatal(err)
	}
	in := strings.Replace(string(data), "        name: kafka1-domain\n", "        name: kafka1-domain # the primary\n", 1)
	out, err := SetRoute([]byte(in), "switchover-route", "kafka2-domain", "internal-plaintext-listener", 1)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(in, "name: kafka1-domain # the primary", "name: kafka2-domain # the primary", 1)
	want = strings.Replace(want, "        auth: passthrough\n", "        auth: passthrough\n      epoch: 1\n", 1)
	if string(out) != want {
		t.Fatalf("got:\n%s\nwant:\n%s", out, want)
	}

	// Once the epoch is in the file, it is edited in place, and only a
	// writer at that epoch or a newer one gets through.
	out, err = SetRoute(out, "switchover-route", "kafka1-domain", "internal-plaintext-listener", 2)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "name: kafka1-domain # the primary\n") || !strings.HasSuffix(string(out), "      epoch: 2\n  admin:\n    port: 9190\n") {
		t.Errorf("got:\n%s", out)
	}
	if _, err := SetRoute(out, "switchover-route", "kafka1-domain", "internal-plaintext-listener", 2); err != nil {
		t.Errorf("rewriting the same epoch: %v", err)
	}
	_, err = SetRoute(out, "switchover-route", "kafka2-domain", "internal-plaintext-listener", 1)
	if !errors.Is(err, ErrStaleEpoch) || !strings.Contains(err.Error(), `stale writer refused: route "switchover-route" is at epoch 2 in the file, newer than 1`) {
		t.Errorf("err = %v, want a stale writer refused", err)
	}
}

func TestSetRouteErrors(t *testing.T) {
	data, err := os.ReadFile("testdata/switchover.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name                     string
		data                     string
		route, domain, bootstrap string
		want                     string
	}{
		{"unknown route", string(data), "other", "kafka2-domain", "internal-plaintext-listener",
			`no route named "other" (known: switchover-route)`},
		{"unknown domain", string(data), "switchover-route", "kafka3-domain", "internal-plaintext-listener",
			`no streaming domain named "kafka3-domain" (known: kafka1-domain, kafka2-domain)`},
		{"unknown bootstrap server", string(data), "switchover-route", "kafka2-domain", "tls",
			`no bootstrap server "tls" in streaming domain "kafka2-domain" (known: internal-plaintext-listener)`},
		{"invalid file", strings.Replace(string(data), "port: 9190", "prot: 9190", 1), "switchover-route", "kafka2-domain", "internal-plaintext-listener",
			`line 31: admin: unknown key "prot"`},
		{"shared by anchor", base + `    - name: second
      endpoint: "localhost:29092"
      streamingDomain: &sd {name: kafka2-domain, bootstrapServerId: plain}
    - name: third
      endpoint: "localhost:39092"
      streamingDomain: *sd
`, "third", "kafka1-domain", "plain", `cannot rewrite route "third" without changing other settings`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := SetRoute([]byte(tt.data), tt.route, tt.domain, tt.bootstrap, 1)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gateway.yaml")
	if err := WriteFileAtomic(path, []byte("new\n")); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, "new\n", 0o644)

	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(path, []byte("newer\n")); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, "newer\n", 0o600)

	// Through a symlink, the file it points to is replaced.
	link := filepath.Join(dir, "link.yaml")
	if err := os.Symlink("gateway.yaml", link); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(link, []byte("newest\n")); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, "newest\n", 0o600)
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("link.yaml is no longer a symlink: %v, %v", fi, err)
	}
	checkNoTemp(t, dir)
}

func TestWriteFileAtomicRenameFails(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gateway.yaml")
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(path, "keep"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(path, []byte("new\n")); err == nil {
		t.Fatal("replacing a directory succeeded")
	}
	if fi, err := os.Stat(filepath.Join(path, "keep")); err != nil || fi.Size() != 1 {
		t.Errorf("the directory was changed: %v, %v", fi, err)
	}
	checkNoTemp(t, dir)
}

func TestWriteFileAtomicReadOnlyDir(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root can write to read-only directories")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(path, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o755) })
	if err := WriteFileAtomic(path, []byte("new\n")); err == nil {
		t.Fatal("writing into a read-only directory succeeded")
	}
	checkFile(t, path, "old\n", 0o644)
	checkNoTemp(t, dir)
}

func checkFile(t *testing.T, path, content string, perm os.FileMode) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != content || fi.Mode().Perm() != perm {
		t.Errorf("%s holds %q with mode %v, want %q with %v", path, data, fi.Mode().Perm(), content, perm)
	}
}

func checkNoTemp(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

func TestFenceRoute(t *testing.T) {
	for _, tt := range []struct {
		name     string
		curEpoch int32
		domain   string
		epoch    int32
		want     string // empty: allowed
	}{
		{"newer epoch, other domain", 3, "b", 4, ""},
		{"newer epoch, same domain", 3, "a", 4, ""},
		{"same epoch, same domain", 3, "a", 3, ""},
		{"same epoch, other domain", 3, "b", 3, `stale writer refused: route "r" is at epoch 3 on a in the file; epoch 3 cannot also point it at b`},
		{"older epoch", 3, "a", 2, `stale writer refused: route "r" is at epoch 3 in the file, newer than 2`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := FenceRoute("r", "in the file", "a", tt.curEpoch, tt.domain, tt.epoch)
			if tt.want == "" && err != nil || tt.want != "" && (!errors.Is(err, ErrStaleEpoch) || err.Error() != tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}

// TestSwitchRouteOneWinnerPerEpoch: writers that race to point a route at
// different domains at one epoch each read, check and write in turn, so
// exactly one of them wins and the others are refused as stale.
func TestSwitchRouteOneWinnerPerEpoch(t *testing.T) {
	data, err := os.ReadFile("testdata/switchover.yaml")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	for round := int32(1); round <= 20; round++ {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var won, stale atomic.Int32
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				changed, err := SwitchRoute(path, "switchover-route", []string{"kafka1-domain", "kafka2-domain"}[i%2], 1)
				switch {
				case errors.Is(err, ErrStaleEpoch):
					stale.Add(1)
				case err != nil:
					t.Error(err)
				case changed:
					won.Add(1)
				}
			}()
		}
		wg.Wait()
		if won.Load() != 1 || stale.Load() != 4 {
			t.Fatalf("round %d: %d writers changed the file and %d were refused; want 1 and the 4 of the other domain", round, won.Load(), stale.Load())
		}
	}
}

// TestSwitchRouteWaitsForOtherProcess: a writer holding the lock file (as
// another process would) makes SwitchRoute wait until it lets go.
func TestSwitchRouteWaitsForOtherProcess(t *testing.T) {
	data, err := os.ReadFile("testdata/switchover.yaml")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	unlock, err := lockFile(path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := SwitchRoute(path, "switchover-route", "kafka2-domain", 1); done <- err }()
	select {
	case err := <-done:
		t.Fatalf("SwitchRoute went ahead while another writer held the lock: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
