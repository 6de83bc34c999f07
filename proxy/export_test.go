package proxy

import "time"

// SetRoundTripTimeout shortens the bound on the gateway's own requests for a
// test, before its gateway starts; restore puts it back.
func SetRoundTripTimeout(d time.Duration) (restore func()) {
	old := roundTripTimeout
	roundTripTimeout = d
	return func() { roundTripTimeout = old }
}

// SetResyncWait shortens how long a consumer's fetches are held after a
// switch; restore puts it back.
func SetResyncWait(d time.Duration) (restore func()) {
	old := resyncWait
	resyncWait = d
	return func() { resyncWait = old }
}

// SetParkProduce makes every Produce run park between the route's hold and
// its forwarding; restore removes it. Set it before the gateway serves.
func SetParkProduce(park func()) (restore func()) {
	parkProduce = park
	return func() { parkProduce = nil }
}
