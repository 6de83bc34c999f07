// Package kafkatest runs real Apache Kafka for Turnout's end-to-end tests:
// single-node KRaft clusters, MirrorMaker 2, Java and kcat clients, and the
// turnout binary, each a process of its own with a log file. A Bed owns what a
// test starts and ends all of it when the test ends, failed or not; the logs
// of a failed test are kept in e2e/out/<test>/.
//
// The tests skip unless TURNOUT_E2E=1 (make e2e sets it), so that go test
// ./... never starts a JVM. A machine without Java 17, javac, or the Kafka jars
// (which Maven fetches into e2e/lib) is told which is missing; with CI=true
// that is a failure rather than a skip.
package kafkatest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// E2EDir is the e2e/ folder of the repository: pom.xml, lib/, java/, out/.
var E2EDir = func() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		panic("kafkatest: cannot locate its own source")
	}
	return filepath.Dir(filepath.Dir(file))
}()

// LibDir holds the Kafka jars that `make e2e-deps` copies there with Maven.
func LibDir() string { return filepath.Join(E2EDir, "lib") }

// jarsNeeded are the jars whose presence shows the Maven copy is complete:
// the broker, the tools, MirrorMaker 2 and the log4j2 binding.
var jarsNeeded = []string{"kafka_2.13-*.jar", "kafka-tools-*.jar", "connect-mirror-*.jar", "connect-runtime-*.jar", "log4j-core-*.jar", "log4j-slf4j2-impl-*.jar"}

var (
	envOnce    sync.Once
	envMissing string
)

// Missing names what this machine lacks for the real-Kafka tests, or is "".
func Missing() string {
	envOnce.Do(func() { envMissing = checkEnv() })
	return envMissing
}

var javaVersion = regexp.MustCompile(`version "(\d+)(?:\.(\d+))?`)

func checkEnv() string {
	var missing []string
	if out, err := exec.Command("java", "-version").CombinedOutput(); err != nil {
		missing = append(missing, "Java 17 (no java on PATH)")
	} else if m := javaVersion.FindSubmatch(out); m == nil {
		missing = append(missing, fmt.Sprintf("Java 17 (cannot read the version java prints: %q)", strings.TrimSpace(string(out))))
	} else if v, _ := strconv.Atoi(string(m[1])); v < 17 {
		missing = append(missing, fmt.Sprintf("Java 17 (java on PATH is version %d)", v))
	}
	if _, err := exec.LookPath("javac"); err != nil {
		missing = append(missing, "javac (a JDK 17, not only a JRE: the switchover test compiles e2e/java)")
	}
	for _, pat := range jarsNeeded {
		if m, _ := filepath.Glob(filepath.Join(LibDir(), pat)); len(m) == 0 {
			if _, err := exec.LookPath("mvn"); err != nil {
				missing = append(missing, "Maven (no mvn on PATH: it fetches Apache Kafka into e2e/lib)")
			} else {
				missing = append(missing, "the Kafka jars in e2e/lib (run make e2e-deps)")
			}
			break
		}
	}
	if len(missing) == 0 {
		return ""
	}
	return "real-Kafka end-to-end tests need " + strings.Join(missing, ", ")
}

// Enabled says whether the real-Kafka tests were asked for.
func Enabled() bool { return os.Getenv("TURNOUT_E2E") == "1" }

// CI is true when running under CI, where a missing tool fails the run.
func CI() bool { return os.Getenv("CI") == "true" }

// Require skips the test unless TURNOUT_E2E=1, and skips it (or under CI
// fails it) when Java, javac or the Kafka jars are missing.
func Require(t testing.TB) {
	t.Helper()
	if !Enabled() {
		t.Skip("real-Kafka end-to-end test: runs under make e2e (TURNOUT_E2E=1)")
	}
	if msg := Missing(); msg != "" {
		if CI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// RequireKcat is Require for tests that run kcat as well.
func RequireKcat(t testing.TB) string {
	t.Helper()
	Require(t)
	path, err := exec.LookPath("kcat")
	if err != nil {
		msg := "kcat is missing (make e2e-deps installs it with apt-get install -y kcat)"
		if CI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return path
}
