package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/turnout/turnout/consensus"
	"github.com/turnout/turnout/internal/ctlsec"
	"github.com/turnout/turnout/policy"
)

// Status is the body of GET /status: what this agent knows, from the
// replicated state and its own view.
type Status struct {
	ID     string                  `json:"id"`
	Leader string                  `json:"leader"`
	Term   uint64                  `json:"term"`
	Routes []RouteStatus           `json:"routes"`
	Domain map[string]DomainStatus `json:"domains"`
	Lag    map[string]policy.Lag   `json:"lag"`
	// LastFailover is the most recent flip of any route.
	LastFailover *consensus.Flip `json:"lastFailover,omitempty"`
}

// RouteStatus is one route in Status.
type RouteStatus struct {
	Name         string `json:"name"`
	ActiveDomain string `json:"activeDomain"`
	Epoch        int32  `json:"epoch"`
	// State is "serving", "switching" (a flip in progress) or "failed"
	// (the last flip stopped; Flip says where).
	State    string          `json:"state"`
	Flip     *consensus.Flip `json:"flip,omitempty"`
	Decision policy.Code     `json:"decision"`
	Reason   string          `json:"reason"`
}

// DomainStatus is one domain's health: healthy in a quorum of the agents'
// fresh views, and each agent's latest view.
type DomainStatus struct {
	Healthy bool                   `json:"healthy"`
	ByAgent map[string]policy.View `json:"byAgent"`
}

// Status reports what this agent knows now.
func (a *Agent) Status() Status {
	st := a.node.State()
	leader, _ := a.node.Leader()
	s := Status{ID: a.cfg.ID, Leader: leader, Term: a.node.Term(), Domain: map[string]DomainStatus{}, Lag: st.Lag}
	if s.Lag == nil {
		s.Lag = map[string]policy.Lag{}
	}
	now := time.Now()
	for _, byDomain := range st.Views {
		for domain, v := range byDomain {
			ds := s.Domain[domain]
			if ds.ByAgent == nil {
				ds.ByAgent = map[string]policy.View{}
			}
			ds.ByAgent[v.Agent] = v
			s.Domain[domain] = ds
		}
	}
	for domain, ds := range s.Domain {
		healthy := 0
		for _, v := range ds.ByAgent {
			if v.Healthy && a.policy.Fresh(v, now) {
				healthy++
			}
		}
		ds.Healthy = healthy >= a.policy.Quorum(len(a.cfg.Peers))
		s.Domain[domain] = ds
	}
	for _, pr := range a.policy.Routes {
		r := st.Routes[pr.Name]
		if r == nil {
			continue
		}
		rs := RouteStatus{Name: r.Name, ActiveDomain: r.Active, Epoch: r.Epoch, State: "serving"}
		switch {
		case r.InProgress != nil:
			rs.State, rs.Flip = "switching", r.InProgress
		case r.LastFlip != nil:
			rs.Flip = r.LastFlip
			if r.LastFlip.Outcome == consensus.OutcomeFailed {
				rs.State = "failed"
			}
		}
		// Every agent can say what the policy makes of the replicated
		// state; only the leader acts on it.
		d := policy.Decide(st.Input(r.Name, time.Now(), len(a.cfg.Peers)), a.policy)
		rs.Decision, rs.Reason = d.Code, d.Reason
		s.Routes = append(s.Routes, rs)
		if f := rs.Flip; f != nil && (s.LastFailover == nil || f.StartedAt.After(s.LastFailover.StartedAt)) {
			s.LastFailover = f
		}
	}
	return s
}

func (a *Agent) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, a.Status())
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if id, _ := a.node.Leader(); id == "" {
			http.Error(w, "no leader\n", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.metrics.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("POST /failover", func(w http.ResponseWriter, r *http.Request) {
		var fr FailoverRequest
		if err := decodeJSON(r, &fr); err != nil {
			writeJSON(w, http.StatusBadRequest, Outcome{Code: CodeBadRequest, Message: err.Error()})
			return
		}
		o := a.Failover(r.Context(), fr)
		code := http.StatusOK
		switch {
		case o.Code == CodeBadRequest:
			code = http.StatusBadRequest
		case o.Code.Retry():
			code = http.StatusServiceUnavailable
		case !o.OK:
			code = http.StatusConflict
		}
		writeJSON(w, code, o)
	})
	// Followers hand their views and lag measures to the leader here.
	mux.HandleFunc("POST /v1/apply", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		cmd, err := consensus.Decode(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		received := time.Now()
		var sent time.Time
		if h := r.Header.Get(SentAtHeader); h != "" {
			if sent, err = time.Parse(time.RFC3339Nano, h); err != nil {
				http.Error(w, fmt.Sprintf("%s: %v", SentAtHeader, err), http.StatusBadRequest)
				return
			}
		}
		cmd, refused := admitReport(cmd, received, sent, a.cfg.ID, a.cfg.Peers, a.policy)
		if refused != nil {
			a.metrics.reportsRefused.WithLabelValues(refused.reason).Inc()
			a.log.Warn("report refused", "reason", refused.reason, "err", refused.msg, "remote", r.RemoteAddr)
			http.Error(w, refused.msg, refused.status)
			return
		}
		if err := a.node.Apply(r.Context(), cmd); err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && err != io.EOF {
		return fmt.Errorf("request body: %w", err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// postJSON posts body to another agent and decodes a JSON answer into out
// (if not nil). Any status but 2xx is an error, unless out can take the
// answer (an Outcome carries its own refusal).
func (a *Agent) postJSON(ctx context.Context, url string, body, out any, header http.Header) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err := ctlsec.Unauthorized(resp, data, "every agent needs the same --token-file"); err != nil {
		return err
	}
	if out != nil && json.Unmarshal(data, out) == nil {
		return nil
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %d %s", url, resp.StatusCode, bytes.TrimSpace(data))
	}
	return nil
}
