package controllers

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// ingestPresence remembers, per ChatBackend, whether its ingest CronJob and
// Jobs may exist, so that removeIngest reads nothing for a ChatBackend
// whose ingest objects are known to be gone. Why: most ChatBackends of a
// fleet have no spec.ingest, and each of their reconciles looked up a
// CronJob and listed Jobs that could not exist.
//
// It lives in memory: after a restart every ChatBackend is unknown again,
// and its first reconcile looks once. The cache answers that look, since it
// synced before the first reconcile and so holds what an earlier process
// made; the CronJob's own runs that it does not hold yet go with the
// CronJob (background propagation). Only what this process made may be
// missing from the cache, so that is confirmed with the API server.
// This holds because the CronJob and Job informers start with the
// controller, after it wins leadership: a standby that warmed its caches
// early could lag behind the old leader's last CronJob and mark it gone. Also
// accepted: a CronJob put back from outside (a restore) while its
// ChatBackend has no spec.ingest stays until the next restart.
type ingestPresence struct {
	mu   sync.Mutex
	byCB map[types.NamespacedName]ingestObjects
}

type ingestObjects int

const (
	// ingestUnknown: not looked at by this process; the cache shows them.
	ingestUnknown ingestObjects = iota
	// ingestMade: spec.ingest was set in a reconcile of this process,
	// which may have made objects its cache does not show yet.
	ingestMade
	// ingestGone: removed (or never made) since spec.ingest went away;
	// nothing to look for until it comes back.
	ingestGone
)

func (p *ingestPresence) get(cb types.NamespacedName) ingestObjects {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.byCB[cb]
}

func (p *ingestPresence) set(cb types.NamespacedName, o ingestObjects) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.byCB == nil {
		p.byCB = map[types.NamespacedName]ingestObjects{}
	}
	p.byCB[cb] = o
}

func (p *ingestPresence) forget(cb types.NamespacedName) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.byCB, cb)
}
