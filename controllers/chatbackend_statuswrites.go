package controllers

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/resourceversion"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
)

// statusWrites lets a reconcile start from the status the previous
// reconcile of the same ChatBackend wrote, when the cache does not show
// that write yet.
//
// Why: a reconcile that changed something ends with a status patch, and the
// watch events of the children it just wrote (the Deployment it created, the
// migrations Job's completion) requeue the ChatBackend at once, often before
// the cache holds the patched ChatBackend. That reconcile started from the
// status before the patch: it found the finished migration unrecorded and
// recorded it a second time, with a second MigrationSucceeded Event, and
// patched the very same status again. On a fleet of 200 that was a fifth of
// the ChatBackends, each costing a status patch and an Event.
//
// The patch's answer is the ChatBackend as the API server stored it.
// resourceVersions of one resource are comparable
// (k8s.io/apimachinery/pkg/util/resourceversion): while the cached
// ChatBackend is older than that answer, the answer is the newer truth and
// the reconcile starts from it. Once the cache has caught up, or has
// something newer (a spec edit), or the versions cannot be compared, the
// record is dropped and the cache is read as before. A record lives from a
// status patch to the next reconcile of that ChatBackend, so at rest there
// are few, each one ChatBackend without its managedFields.
type statusWrites struct {
	mu   sync.Mutex
	byCB map[types.NamespacedName]*chatv1alpha1.ChatBackend
}

// record keeps cb, as the API server answered its status patch.
func (w *statusWrites) record(cb *chatv1alpha1.ChatBackend) {
	rec := cb.DeepCopy()
	// The cache strips them too (ManagerCacheOptions); nothing reads them.
	rec.ManagedFields = nil
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.byCB == nil {
		w.byCB = map[types.NamespacedName]*chatv1alpha1.ChatBackend{}
	}
	w.byCB[types.NamespacedName{Namespace: cb.Namespace, Name: cb.Name}] = rec
}

// latest is cached, or a copy of the ChatBackend the last status patch was
// answered with when the cache has not reached it yet.
func (w *statusWrites) latest(cached *chatv1alpha1.ChatBackend) *chatv1alpha1.ChatBackend {
	key := types.NamespacedName{Namespace: cached.Namespace, Name: cached.Name}
	w.mu.Lock()
	defer w.mu.Unlock()
	rec := w.byCB[key]
	if rec == nil {
		return cached
	}
	if rec.UID == cached.UID {
		if cmp, err := resourceversion.CompareResourceVersion(cached.ResourceVersion, rec.ResourceVersion); err == nil && cmp < 0 {
			return rec.DeepCopy()
		}
	}
	delete(w.byCB, key)
	return cached
}

// forget drops the record of a ChatBackend that is gone, or whose status
// was not written as recorded.
func (w *statusWrites) forget(cb types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.byCB, cb)
}
