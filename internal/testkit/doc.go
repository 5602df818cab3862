// Package testkit is what every test package shares to wait and to build:
// one bounded poll (Eventually, Poll), one way to find and wait for an event
// on an object (Events, WaitEvent), and one CSR builder (CSR and its
// options). It is imported only by tests and test tools; it never sleeps to
// prove a negative: every wait ends at its deadline with what it last saw.
package testkit
