-- Where an answered attempt ended up (outcomes.go, destinationOf): the
-- seed's report statuses for an IVR (IVR_STARTED, IVR_FINISHED), a queue
-- (QUEUE_JOIN, QUEUE_ANSWER, QUEUE_TIMEOUT) and another extension
-- (IN_ANSWER, IN_BUSY, ...); empty for an attempt nobody answered. The
-- record's is its last attempt's. A constant default: no table rewrite.
ALTER TABLE attempts ADD COLUMN destination text NOT NULL DEFAULT '';
ALTER TABLE records ADD COLUMN destination text NOT NULL DEFAULT '';
