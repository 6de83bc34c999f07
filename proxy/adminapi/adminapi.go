// Package adminapi holds the types of the gateway's admin HTTP API, which
// the gateway serves and the agents call, so that the agents need not
// import the gateway itself.
package adminapi

import (
	"fmt"
	"time"
)

// RestartRequest is the optional body of POST /restart: routes to switch
// before the configuration is read again.
type RestartRequest struct {
	Routes []RouteSwitch `json:"routes,omitempty"`
}

// RouteSwitch points a route at a domain at an epoch.
type RouteSwitch struct {
	Name   string `json:"name"`
	Domain string `json:"domain"`
	Epoch  int32  `json:"epoch"`
}

// PauseRequest is the body of POST /pause and POST /resume (which reads
// no ttl).
type PauseRequest struct {
	Route string `json:"route"`
	// Epoch is the route's epoch the pause (or resume) is meant for.
	Epoch int32 `json:"epoch"`
	// TTL is a Go duration, at most MaxPause.
	TTL string `json:"ttl,omitempty"`
	// Owner and Term name who pauses (see PauseOwner): a resume must name
	// the pause's owner, and a pause of an earlier term than the one on is
	// refused.
	Owner string `json:"owner,omitempty"`
	Term  uint64 `json:"term,omitempty"`
}

// LeaseRequest is the body of POST /lease and POST /fence (which reads
// the route and epoch only).
type LeaseRequest struct {
	Route  string `json:"route"`
	Domain string `json:"domain,omitempty"`
	Epoch  int32  `json:"epoch"`
	// TTL is a Go duration, at most MaxLease.
	TTL string `json:"ttl,omitempty"`
}

// StatusResponse is the body of GET /status and POST /restart.
type StatusResponse struct {
	Routes []RouteStatus `json:"routes"`
	Error  string        `json:"error,omitempty"`
}

// RouteStatus is one route as the admin API reports it.
type RouteStatus struct {
	Name              string `json:"name"`
	Endpoint          string `json:"endpoint"`
	Domain            string `json:"domain"`
	BootstrapServerID string `json:"bootstrapServerId"`
	ClusterID         string `json:"clusterId"`
	ConfigEpoch       int32  `json:"configEpoch"`
	Connections       int    `json:"connections"`
	// ProducePausedUntil is set while Produce requests are held for a
	// planned switch.
	ProducePausedUntil *time.Time `json:"producePausedUntil,omitempty"`
	// Lease is the route's fencing state, once the agents granted a lease
	// or fenced it.
	Lease *LeaseStatus `json:"lease,omitempty"`
}

// LeaseStatus is a route's fencing state as the admin API reports it.
type LeaseStatus struct {
	// Epoch is the epoch of the last lease granted; Until when it lapses.
	Epoch int32     `json:"epoch"`
	Until time.Time `json:"until"`
	Live  bool      `json:"live"`
	// CommittedEpoch is the newest epoch the agents said they committed.
	CommittedEpoch int32 `json:"committedEpoch"`
	// ProduceHeld: the route's Produce requests are held for want of a
	// live lease at the epoch served, or because a newer one is committed.
	ProduceHeld bool `json:"produceHeld"`
}

// PauseOwner is who holds a pause: the agents' leader that paused, by its
// id and Raft term. Only the owner may resume; a pause by an owner of the
// same or a later term takes the pause over, one of an earlier term is
// refused. So a leader that was deposed while it waited can neither end nor
// take back the pause of the leader that replaced it, and release the
// producers to the old cluster while the new leader switches.
type PauseOwner struct {
	ID   string
	Term uint64
}

func (o PauseOwner) String() string { return fmt.Sprintf("%q (term %d)", o.ID, o.Term) }

// MaxLease bounds a route lease's ttl.
const MaxLease = time.Minute

// MaxPause bounds a produce pause. The agents' leader renews it while it
// waits for replication and flips; if it dies, the pause ends on its own by
// then. An ended pause hands the held requests to the route's fence
// (lease.go): on a gateway the agents lease the route to, they go on only
// under a live lease for the epoch served and while no newer epoch is
// known, so a pause that ends while a switch is under way does not send
// them to the old cluster. What bounds the hold is then the lease: any
// leader renews it within a third of its ttl; with no agent alive the
// producers stay held, as fencing must.
//
// A pause may have to outlast a route lease granted just before it was last
// renewed, plus the lease request's timeout (the agents size it so), and
// leases run up to MaxLease.
const MaxPause = 2 * time.Minute
