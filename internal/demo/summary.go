package demo

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

func (d *demo) printSummary(t tally, drained bool) {
	lines := []string{"", "Summary"}
	add := func(label, format string, args ...any) {
		lines = append(lines, fmt.Sprintf("  %-34s %s", label, fmt.Sprintf(format, args...)))
	}
	add("RTO", "%s  (kill -> first produce acknowledged on cluster 2)", seconds(d.sum.RTO))
	if d.sum.Detection > 0 {
		add("detection", "%s  (kill -> the leader's quorum decision)", seconds(d.sum.Detection))
	}
	if d.sum.Failover > 0 {
		add("failover", "%s  (kill -> the gateway confirmed on cluster 2)", seconds(d.sum.Failover))
	}
	add("failback", "%s  (signal file written -> %s)", seconds(d.sum.Failback), filepath.Base(d.signal)+".done")
	add("records produced", "%d, acknowledged %d, failed %d", t.Produced, t.Acked, t.Failed)
	add("records consumed", "%d reads of %d distinct records", t.Consumed, t.Distinct)
	if t.Lost > 0 && t.Lost == t.LostBefore {
		add("lost", "%d  (acknowledged by cluster 1 just before the kill, not yet copied to cluster 2: the recovery point, within maxLagRecords %d)", t.Lost, d.maxLag)
	} else {
		add("lost", "%d  (acknowledged, never consumed)", t.Lost)
	}
	add("duplicated", "%d  (consumed more than once: %d read again at the same offset, as the consumer resumed from the copied group offsets; %d stored twice)",
		t.Reread+t.StoredTwice, t.Reread, t.StoredTwice)
	// The longest pause between acknowledgements around each switch (a
	// busy machine pauses a little anywhere; these are the ones to compare).
	longest := func(from, to time.Time) string {
		var best ackGap
		for _, g := range t.Gaps {
			if g.to.After(from) && g.from.Before(to) && g.to.Sub(g.from) > best.to.Sub(best.from) {
				best = g
			}
		}
		if best.from.IsZero() {
			return "none over " + seconds(gapWorth)
		}
		return fmt.Sprintf("%s at %.1fs", seconds(best.to.Sub(best.from)), best.from.Sub(d.scr.start).Seconds())
	}
	if k := d.killedAt.Load(); k != nil {
		add("longest produce pause, failover", "%s", longest(*k, k.Add(5*time.Second)))
	}
	if !d.failbackAsked.IsZero() {
		add("longest produce pause, failback", "%s", longest(d.failbackAsked.Add(-time.Second), d.failbackAsked.Add(d.sum.Failback+2*time.Second)))
	}
	var copies []string
	for _, c := range d.copiers {
		n, errs, div := c.stats()
		s := fmt.Sprintf("%s->%s %d", short(c.from), short(c.to), n)
		if errs > 0 || div > 0 {
			s += fmt.Sprintf(" (%d errors, %d partitions with shifted offsets)", errs, div)
		}
		copies = append(copies, s)
	}
	add("demo copier", "%s records copied", strings.Join(copies, ", "))
	if !drained {
		lines = append(lines, "  the consumer had not read every acknowledged record 20s after the producer stopped")
	}
	result := "PASS: nothing acknowledged was lost"
	switch {
	case t.Lost > t.LostBefore || t.LostBefore > d.maxLag || t.Failed > 0:
		result = "FAIL"
	case t.Lost > 0:
		result = fmt.Sprintf("PASS: only what cluster 1 had not yet replicated when it died was lost (%d records)", t.Lost)
	}
	lines = append(lines, "  "+result, "  logs: "+d.logPath)
	d.scr.println(lines...)
}

func short(domain string) string {
	return strings.TrimSuffix(strings.TrimPrefix(domain, "kafka"), "-domain")
}
