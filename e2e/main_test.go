// Package e2e runs Turnout against real Apache Kafka: KRaft clusters,
// MirrorMaker 2, the Java client, kcat (librdkafka) and franz-go, all through
// the turnout binary. The tests skip unless TURNOUT_E2E=1; make e2e runs them.
package e2e

import (
	"os"
	"testing"

	"github.com/turnout/turnout/e2e/kafkatest"
)

func TestMain(m *testing.M) { os.Exit(kafkatest.Main(m)) }
