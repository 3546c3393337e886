package turn

import (
	"sync"
	"time"
)

// reservationTTL bounds how long a quota slot granted by admit waits for its
// allocation to appear. pion/turn asks the quota handler before it creates
// the relay socket, and says nothing when creation then fails, so an
// unclaimed reservation must expire on its own.
const reservationTTL = 5 * time.Second

// quota counts allocations per user. pion/turn serializes the requests of
// one UDP listener, but TCP connections and separate listeners run
// concurrently, so a user could pass the check twice before either
// allocation exists; a reservation taken at check time closes that gap.
type quota struct {
	max int // <= 0: unlimited

	mu    sync.Mutex
	users map[string]*userAllocs
}

type userAllocs struct {
	active  int
	pending []time.Time // reservations not yet claimed, oldest first
}

func newQuota(limit int) *quota {
	return &quota{max: limit, users: map[string]*userAllocs{}}
}

// admit reserves a slot for one more allocation of user, or refuses.
func (q *quota) admit(user string, now time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	u := q.users[user]
	if u == nil {
		u = &userAllocs{}
		q.users[user] = u
	}
	u.expire(now)
	if q.max > 0 && u.active+len(u.pending) >= q.max {
		q.forgetIfIdle(user, u)
		return false
	}
	u.pending = append(u.pending, now)
	return true
}

// created turns a reservation into an active allocation.
func (q *quota) created(user string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	u := q.users[user]
	if u == nil {
		// Reservation expired before the allocation appeared; count it
		// anyway, the allocation is real.
		u = &userAllocs{}
		q.users[user] = u
	}
	if len(u.pending) > 0 {
		u.pending = u.pending[1:]
	}
	u.active++
}

// deleted releases an active allocation.
func (q *quota) deleted(user string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	u := q.users[user]
	if u == nil {
		return
	}
	if u.active > 0 {
		u.active--
	}
	q.forgetIfIdle(user, u)
}

// active reports the allocations user holds.
func (q *quota) active(user string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	if u := q.users[user]; u != nil {
		return u.active
	}
	return 0
}

func (u *userAllocs) expire(now time.Time) {
	i := 0
	for i < len(u.pending) && now.Sub(u.pending[i]) > reservationTTL {
		i++
	}
	u.pending = u.pending[i:]
}

// forgetIfIdle drops users with nothing open so the map does not grow with
// every participant ever seen.
func (q *quota) forgetIfIdle(user string, u *userAllocs) {
	if u.active == 0 && len(u.pending) == 0 {
		delete(q.users, user)
	}
}
