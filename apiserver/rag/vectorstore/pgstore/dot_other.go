//go:build !amd64

package pgstore

func dot(a, b []float32) float32 { return dotGeneric(a, b[:len(a)]) }

func dotHalf(q []float32, h []uint16) float32 { return dotHalfGeneric(q, h) }
