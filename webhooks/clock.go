package webhooks

import (
	"container/heap"
	"time"
)

// Clock is the dispatcher's time source. Tests inject a fake one so that debounce, batching windows
// and back-off run without real sleeping.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that delivers on C once d has passed (at once when d <= 0).
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer made by a Clock.
type Timer interface {
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it was still pending.
	Stop() bool
}

type systemClock struct{}

func (systemClock) Now() time.Time                 { return time.Now() }
func (systemClock) NewTimer(d time.Duration) Timer { return systemTimer{time.NewTimer(d)} }

type systemTimer struct{ t *time.Timer }

func (t systemTimer) C() <-chan time.Time { return t.t.C }
func (t systemTimer) Stop() bool          { return t.t.Stop() }

// schedule is the dispatcher's agenda: pending removals, batch windows and retry back-offs,
// ordered by deadline and, for equal deadlines, by the order they were scheduled (so a
// member_removed scheduled before its channel_vacated is sent first). One Clock timer is armed for
// the earliest entry (Dispatcher.settle), and the loop fires what is due. Guarded by Dispatcher.mu.
type schedule struct {
	entries entryHeap
	seq     uint64
}

// entry is one scheduled action; index is its place in the heap, -1 once fired or cancelled.
type entry struct {
	at    time.Time
	seq   uint64
	index int
	retry bool // a back-off wait (kept through shutdown, unlike removals and batch windows)
	fire  func()
}

func (s *schedule) add(at time.Time, retry bool, fire func()) *entry {
	s.seq++
	e := &entry{at: at, seq: s.seq, retry: retry, fire: fire}
	heap.Push(&s.entries, e)
	return e
}

// cancel removes e if it is still pending.
func (s *schedule) cancel(e *entry) {
	if e != nil && e.index >= 0 {
		heap.Remove(&s.entries, e.index)
	}
}

// next returns the earliest deadline.
func (s *schedule) next() (time.Time, bool) {
	if len(s.entries) == 0 {
		return time.Time{}, false
	}
	return s.entries[0].at, true
}

// popDue removes and returns the earliest entry if it is due at now.
func (s *schedule) popDue(now time.Time) *entry {
	if len(s.entries) == 0 || s.entries[0].at.After(now) {
		return nil
	}
	return heap.Pop(&s.entries).(*entry)
}

// popAny removes and returns the earliest entry, due or not.
func (s *schedule) popAny() *entry {
	if len(s.entries) == 0 {
		return nil
	}
	return heap.Pop(&s.entries).(*entry)
}

// readd puts back an entry taken with popAny.
func (s *schedule) readd(e *entry) { heap.Push(&s.entries, e) }

type entryHeap []*entry

func (h entryHeap) Len() int { return len(h) }
func (h entryHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h entryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *entryHeap) Push(x any) {
	e := x.(*entry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *entryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	e.index = -1
	*h = old[:len(old)-1]
	return e
}
