package controllers

import (
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
)

// DefaultRolloutDelay is --rollout-delay's default: an operator upgrade
// changes the default image of every ChatBackend without spec.image at the
// same instant, and migrating and rolling them all at once would put a bad
// release on the whole fleet before anyone could look at the first one, and
// load the databases and the nodes all at once. Thirty seconds lets the
// first migrations and rollouts show a failure (Degraded, the alerts)
// while most of the fleet still serves the previous release, and still
// upgrades 120 ChatBackends an hour; 0 upgrades them all at once.
const DefaultRolloutDelay = 30 * time.Second

// fleetRollout spaces the upgrades of the ChatBackends that follow the
// operator's default image, as CloudNativePG's rollout delay does: each
// such ChatBackend reserves a start time at least RolloutDelay after the
// previous reservation, and its migration starts no earlier. A reservation
// does not move once made, so the waiting ChatBackend's status (which names
// the time) is written once, not every time another one goes.
//
// Reservations live in the operator's memory: they matter only while a
// default image change rolls through the fleet, which starts with the
// operator's own restart, and a restarted operator starts with the first
// waiting ChatBackend at once and spaces the rest again.
type fleetRollout struct {
	mu sync.Mutex
	// next is the earliest start of a new reservation.
	next  time.Time
	slots map[types.NamespacedName]time.Time
}

// slot is the start time reserved for key, reserving one now if it has
// none.
func (f *fleetRollout) slot(key types.NamespacedName, now time.Time, delay time.Duration) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	if at, ok := f.slots[key]; ok {
		return at
	}
	at := now
	if f.next.After(now) {
		at = f.next
	}
	if f.slots == nil {
		f.slots = map[types.NamespacedName]time.Time{}
	}
	f.slots[key] = at
	f.next = at.Add(delay)
	return at
}

// release forgets key's reservation: its upgrade is migrated, it no longer
// follows the default image, or it was deleted. A failed migration keeps
// its reservation, so that its retry does not queue again.
func (f *fleetRollout) release(key types.NamespacedName) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.slots, key)
}

// awaitsDefaultUpgrade reports whether cb is upgraded because the
// operator's default image changed: it sets no spec.image, and something
// else than image was migrated before. A first install (nothing migrated
// yet) and an explicit spec.image are someone's deliberate change to this
// one ChatBackend and are never delayed.
func awaitsDefaultUpgrade(cb *chatv1alpha1.ChatBackend, image string) bool {
	return cb.Spec.Image == "" && cb.Status.MigratedImage != "" && cb.Status.MigratedImage != image
}

// fleetRolloutWait is how long s's migration must wait for its fleet
// rollout slot; 0 when it may start now, or was never delayed. While it
// waits, the scope says so and until when.
func (r *ChatBackendReconciler) fleetRolloutWait(s *scope, now time.Time) time.Duration {
	key := types.NamespacedName{Namespace: s.cb.Namespace, Name: s.cb.Name}
	if r.RolloutDelay <= 0 || !awaitsDefaultUpgrade(s.cb, s.image) {
		r.fleet.release(key)
		return 0
	}
	at := r.fleet.slot(key, now, r.RolloutDelay)
	if !at.After(now) {
		return 0
	}
	s.migration = migrationDelayed
	s.migrationMessage = fmt.Sprintf("the operator's default image changed to %s: waiting for this ChatBackend's fleet rollout slot at %s "+
		"(one ChatBackend following the default image starts upgrading every %s, --rollout-delay); %s",
		s.image, at.UTC().Format(time.RFC3339), r.RolloutDelay, servingNote(s.cb.Status.MigratedImage))
	return at.Sub(now)
}
