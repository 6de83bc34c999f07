package kafkatest

import (
	"fmt"
	"os"
	"sort"
	"sync"
	"testing"
)

var report struct {
	sync.Mutex
	lines map[string][]string // by section
	order []string
}

// Report adds a line to a section of the summary Main prints when the tests
// are done (make e2e shows it after the test output).
func Report(section, line string) {
	report.Lock()
	defer report.Unlock()
	if report.lines == nil {
		report.lines = map[string][]string{}
	}
	if _, ok := report.lines[section]; !ok {
		report.order = append(report.order, section)
	}
	report.lines[section] = append(report.lines[section], line)
}

// Main runs the tests, prints the report, and removes what the package
// built. Use it from TestMain: os.Exit(kafkatest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	report.Lock()
	for _, s := range report.order {
		lines := report.lines[s]
		sort.Strings(lines)
		fmt.Printf("\n%s\n", s)
		for _, l := range lines {
			fmt.Println(l)
		}
	}
	report.Unlock()
	if binary.dir != "" {
		os.RemoveAll(binary.dir)
	}
	return code
}
