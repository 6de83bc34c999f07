package kafkatest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// JVM says how to run one Java process.
type JVM struct {
	// Heap is -Xmx (default 256m), MinHeap -Xms (default 64m).
	Heap, MinHeap string
	// Debug lists loggers logged at DEBUG; the rest log at INFO.
	Debug []string
	// ClassPath is put before the Kafka jars.
	ClassPath string
	// SysProps are system properties, name=value (-D).
	SysProps []string
}

// Java makes the command that runs mainClass with the Kafka jars on the class
// path and log4j2 writing to <name>.log in the test's folder. The command is
// not started.
func (b *Bed) Java(name string, jvm JVM, mainClass string, args ...string) *exec.Cmd {
	b.T.Helper()
	cfg := b.Path(name + "-log4j2.properties")
	if err := WriteLog4j(cfg, b.Path(name+".log"), jvm.Debug); err != nil {
		b.T.Fatal(err)
	}
	heap := jvm.Heap
	if heap == "" {
		heap = "256m"
	}
	minHeap := jvm.MinHeap
	if minHeap == "" {
		minHeap = "64m"
	}
	cp := filepath.Join(LibDir(), "*")
	if jvm.ClassPath != "" {
		cp = jvm.ClassPath + string(os.PathListSeparator) + cp
	}
	jargs := []string{
		"-Xmx" + heap, "-Xms" + minHeap,
		// Two cores: one GC thread, and no C2 compiler competing with the
		// tests for CPU; these JVMs live for a minute or two.
		"-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData",
		"-Djava.awt.headless=true",
		"-Dlog4j2.configurationFile=" + cfg,
	}
	for _, p := range jvm.SysProps {
		jargs = append(jargs, "-D"+p)
	}
	jargs = append(jargs, "-cp", cp, mainClass)
	cmd := exec.Command("java", append(jargs, args...)...)
	cmd.Dir = b.Dir
	return cmd
}

// WriteLog4j writes a log4j2 configuration that logs everything at INFO, and
// the debug loggers at DEBUG, to logFile.
func WriteLog4j(path, logFile string, debug []string) error {
	var sb strings.Builder
	fmt.Fprintf(&sb, "status = warn\n")
	fmt.Fprintf(&sb, "appender.file.type = File\nappender.file.name = file\n")
	fmt.Fprintf(&sb, "appender.file.fileName = %s\n", logFile)
	fmt.Fprintf(&sb, "appender.file.layout.type = PatternLayout\n")
	fmt.Fprintf(&sb, "appender.file.layout.pattern = [%%d{ISO8601}] %%p [%%t] %%m (%%c)%%n\n")
	fmt.Fprintf(&sb, "rootLogger.level = info\nrootLogger.appenderRef.file.ref = file\n")
	sort.Strings(debug)
	for i, l := range debug {
		fmt.Fprintf(&sb, "logger.d%d.name = %s\nlogger.d%d.level = debug\n", i, l, i)
	}
	return os.WriteFile(path, []byte(sb.String()), 0o644)
}

// CompileJava compiles e2e/java/*.java once per bed and returns the class
// folder to put on a JVM's class path.
func (b *Bed) CompileJava() string {
	b.T.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.classDir != "" {
		return b.classDir
	}
	srcs, _ := filepath.Glob(filepath.Join(E2EDir, "java", "*.java"))
	if len(srcs) == 0 {
		b.T.Fatal("no Java sources in e2e/java")
	}
	dir := b.Path("classes")
	args := append([]string{"-nowarn", "-d", dir, "-cp", filepath.Join(LibDir(), "*")}, srcs...)
	if out, err := exec.Command("javac", args...).CombinedOutput(); err != nil {
		b.T.Fatalf("javac %v: %v\n%s", srcs, err, out)
	}
	b.classDir = dir
	return dir
}
