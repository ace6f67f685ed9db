// Package rating is the rating service: tariffs (per-prefix rates loaded
// from CSV), the authorization of every leg before it is dialed (no rate,
// a blocked destination or an empty prepaid balance refuse it), prepaid
// balances with reservations so concurrent calls cannot overspend, the
// settlement of each answered leg from its hangup event, and the Direction
// of numbers.
//
// Tariffs live in PostgreSQL and, for lookups, in memory: each tariff is
// compiled into a prefix.Table and swapped in whole with an atomic pointer,
// so a lookup sees the old tariff or the new one, never half of either, and
// never waits for a reload. Replicas tell each other about changes on NATS
// (subject rating.changed) and also compare tariff versions periodically,
// in case a notification was missed.
package rating
