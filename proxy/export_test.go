package proxy

import "time"

// SetRoundTripTimeout shortens the bound on the gateway's own requests for a
// test, before its gateway starts; restore puts it back.
func SetRoundTripTimeout(d time.Duration) (restore func()) {
	old := roundTripTimeout
	roundTripTimeout = d
	return func() { roundTripTimeout = old }
}
