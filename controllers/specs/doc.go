// Package specs builds the child objects of a ChatBackend.
//
// Every function here is pure: it takes the ChatBackend (and what the
// reconciler resolved, such as the image whose migrations succeeded) and
// returns the desired object, with no client and no cluster. That keeps the
// shape of each child testable in plain unit tests and keeps the reconciler
// about ordering and status only. Owner references are set by the reconciler,
// which has the scheme.
package specs
