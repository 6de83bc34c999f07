package proxy

import "testing"

func TestSaslRounds(t *testing.T) {
	for _, tc := range []struct {
		mechanism string
		want      int
	}{
		{"PLAIN", 1},
		{"OAUTHBEARER", 1},
		{"SCRAM-SHA-256", 2}, // the first answer carries no error, and proves nothing
		{"SCRAM-SHA-512", 2},
		{"GSSAPI", 0}, // rounds vary: never counted done
		{"", 0},
		{"X-UNKNOWN", 0},
	} {
		if got := saslRounds(tc.mechanism); got != tc.want {
			t.Errorf("saslRounds(%q) = %d, want %d", tc.mechanism, got, tc.want)
		}
	}
}

func TestPassthroughCapped(t *testing.T) {
	for _, tc := range []struct {
		name                       string
		clusterSASL, passing, done bool
		want                       bool
	}{
		{"SASL cluster, no handshake yet", true, false, false, true},
		{"SASL cluster, exchange under way", true, true, false, true},
		{"SASL cluster, exchange done", true, false, true, false},
		{"unknown cluster, no handshake", false, false, false, false},
		{"unknown cluster, exchange under way", false, true, false, true},
		{"unknown cluster, exchange done", false, false, true, false},
	} {
		if got := passthroughCapped(tc.clusterSASL, tc.passing, tc.done); got != tc.want {
			t.Errorf("%s: capped %v, want %v", tc.name, got, tc.want)
		}
	}
}
