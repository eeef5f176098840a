-- test/bench/disorder.sql — the benchmark corpus (corpus.sql) in another
-- arrival order: in order, or with a chosen share of deliveries out of order.
--
-- A delivery is out of order when its event is older than the latest event of
-- its entity among the deliveries that arrived before it (the entity is the
-- generator's: bench.corpus.ent; the event time is the body's:
-- bench.corpus.event_at). The reordered corpus has exactly the deliveries of
-- bench.corpus, byte for byte, and each entity keeps the arrival positions
-- (slots) its deliveries had; only which of its deliveries takes which slot
-- changes:
--
--   1. in order: the k-th event of an entity (by event time, then by corpus
--      position: a redelivery right after its first delivery) takes the
--      entity's k-th slot. This undoes corpus.sql's 2% of swapped neighbours;
--   2. with :share > 0, disjoint pairs of neighbours in an entity's event
--      order (its events k-1 and k, k even, both first deliveries of their
--      body, k strictly later) trade their slots, each pair with probability
--      :share * deliveries / candidate pairs (chosen by a hash of the entity
--      and k, so the result is the same on every run): event k-1 then arrives
--      after event k, out of order. At 20% that takes about half the
--      candidate pairs; the share reached is measured, not assumed.
--
-- The state a correct engine derives is therefore the same for every
-- reordering (SPEC §1.3); outcomes differ (stale instead of applied, ...).
--
-- Creates bench.reordered (n, body): n is the arrival order. Prints one line:
-- deliveries|out of order|candidate pairs|pairs swapped.
--
-- psql variables: share (0 to 1; 0 = in order).

\set ON_ERROR_STOP on
SET client_min_messages = warning;

DROP TABLE IF EXISTS bench.reordered;
CREATE UNLOGGED TABLE bench.reordered (n int PRIMARY KEY, body jsonb NOT NULL, ent text NOT NULL,
                                       event_at timestamptz NOT NULL, k int NOT NULL);

-- 1. in order: event k of an entity takes the entity's k-th slot
CREATE TEMP TABLE ranked AS
SELECT n, ent, event_at,
       row_number() OVER (PARTITION BY md5(body::text) ORDER BY n) = 1 AS first,
       row_number() OVER (PARTITION BY ent ORDER BY event_at, n) AS k,
       row_number() OVER (PARTITION BY ent ORDER BY n) AS j
  FROM bench.corpus;
ANALYZE ranked;
CREATE TEMP TABLE slotted AS
SELECT a.n AS src, a.ent, a.event_at, a.first, a.k, b.n AS slot
  FROM ranked a JOIN ranked b ON b.ent = a.ent AND b.j = a.k;
ANALYZE slotted;

-- 2. pairs (k-1, k) that trade slots
CREATE TEMP TABLE candidate AS
SELECT cur.ent, cur.k,
       ('x' || substr(md5('disorder/' || cur.ent || '/' || cur.k), 1, 8))::bit(32)::bigint / 4294967296.0 AS r
  FROM slotted cur JOIN slotted prev ON prev.ent = cur.ent AND prev.k = cur.k - 1
 WHERE cur.k % 2 = 0 AND cur.first AND prev.first AND cur.event_at > prev.event_at;
ANALYZE candidate;
CREATE TEMP TABLE picked AS
SELECT c.ent, c.k
  FROM candidate c,
       (SELECT least(1, :share * (SELECT count(*) FROM bench.corpus) / greatest(count(*), 1)) AS p
          FROM candidate) p
 WHERE c.r < p.p;
ANALYZE picked;

INSERT INTO bench.reordered (n, body, ent, event_at, k)
SELECT CASE WHEN p1.k IS NOT NULL THEN prev.slot WHEN p2.k IS NOT NULL THEN next.slot ELSE s.slot END,
       c.body, s.ent, s.event_at, s.k
  FROM slotted s
  JOIN bench.corpus c ON c.n = s.src
  LEFT JOIN picked p1 ON p1.ent = s.ent AND p1.k = s.k           -- s is the later event of a pair
  LEFT JOIN picked p2 ON p2.ent = s.ent AND p2.k = s.k + 1       -- s is the earlier one
  LEFT JOIN slotted prev ON prev.ent = s.ent AND prev.k = s.k - 1
  LEFT JOIN slotted next ON next.ent = s.ent AND next.k = s.k + 1;
ANALYZE bench.reordered;

SELECT count(*) AS deliveries,
       count(*) FILTER (WHERE event_at < latest_before) AS out_of_order,
       (SELECT count(*) FROM candidate) AS candidates,
       (SELECT count(*) FROM picked) AS swapped
  FROM (SELECT event_at, max(event_at) OVER (PARTITION BY ent ORDER BY n
                                             ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS latest_before
          FROM bench.reordered) o;

DROP TABLE ranked, slotted, candidate, picked;
