package main

import (
	"context"
	"time"
)

// pacer spreads work at a fixed rate. Sleeping once per item is too coarse past a few thousand items
// a second, so it works in steps of at least pacerStep and says how many items are due at each.
// A caller that falls behind by more than maxBurst items is not allowed to catch up in one rush: the
// debt is forgiven and counted in lagged, so a slow generator shows up in the results instead of
// quietly distorting the rate.
type pacer struct {
	rate     float64 // items per second, > 0
	start    time.Time
	done     int64 // items handed out since start
	maxBurst int64
	lagged   int64 // items forgiven because the caller was late
}

const pacerStep = time.Millisecond

func newPacer(rate float64) *pacer {
	burst := int64(rate * 0.02) // 20 ms worth
	return &pacer{rate: rate, start: time.Now(), maxBurst: max(burst, 1)}
}

// due reports how many items are owed at now, without waiting.
func (p *pacer) due(now time.Time) int64 {
	owed := int64(now.Sub(p.start).Seconds()*p.rate) - p.done
	if owed > p.maxBurst {
		p.lagged += owed - p.maxBurst
		p.done += owed - p.maxBurst
		owed = p.maxBurst
	}
	return max(owed, 0)
}

// wait blocks until at least one item is due and returns how many are; the caller must do them
// (they count as done). It returns 0 when ctx ends first.
func (p *pacer) wait(ctx context.Context) int64 {
	for {
		if n := p.due(time.Now()); n > 0 {
			p.done += n
			return n
		}
		next := p.start.Add(time.Duration(float64(p.done+1) / p.rate * float64(time.Second)))
		d := max(time.Until(next), pacerStep)
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return 0
		}
	}
}
