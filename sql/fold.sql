-- The fold rules (src/fold.c) on their own: SPEC §6's table, for every
-- (state, status) pair of every graph (account, proposal, check, document,
-- closure), through three providers' bodies, judged by the rules alone.  Each entity is
-- put in a state s0 (a first delivery, then force_status()), and
-- explain() asks what a later delivery of status s would do to it; the
-- verdict must be what the rule tables say: "create" on no state,
-- "refresh" when s = s0, "change" when s0 -> s is a row of
-- onboarding.transition (shipped for every provider, or the provider's),
-- "illegal" otherwise, and the outcome follows the primary effect.
--
-- It runs in a database of its own (the other suites' additions to the
-- state tables, a user's CHECK among them, would refuse some states), and
-- in one transaction: explain() must see what force_status() derived in an
-- earlier statement of it, still in the window until something reads it.
SET client_min_messages = warning;
\set regress_db :DBNAME
CREATE DATABASE onboarding_fold;
\c onboarding_fold
SET client_min_messages = warning;
CREATE EXTENSION onboarding CASCADE;
BEGIN;

-- QI Tech accounts: one per state of the account graph
CREATE TEMP TABLE acc(s0 text);
INSERT INTO acc SELECT unnest(enum_range(NULL::onboarding.account_status))::text;
SELECT count(*) AS created
  FROM acc, LATERAL onboarding.ingest(jsonb_build_object('webhook_type', 'account', 'key', 'fold-acc-' || s0,
           'status', 'pending_bacen_validation', 'event_datetime', '2024-01-01 10:00:00')) i;
SELECT count(*) AS forced
  FROM acc, LATERAL onboarding.force_status('account', 'qitech', 'fold-acc-' || s0, s0, 'suite fold') f
 WHERE s0 <> 'requested';
SELECT count(*) AS in_their_state
  FROM acc JOIN onboarding.account a ON a.provider = 'qitech' AND a.account_key = 'fold-acc-' || acc.s0
 WHERE a.status::text = acc.s0;

-- every status a QI Tech account delivery can carry, once
CREATE TEMP TABLE acc_s AS
SELECT status::text AS s, min(status_raw) AS raw FROM onboarding.status_map
 WHERE provider = 'qitech' AND entity = 'account' AND event_type = 'account' GROUP BY status;

CREATE TEMP TABLE acc_judged AS
SELECT acc.s0, acc_s.s, x->>'outcome' AS outcome, e->>'from' AS from_status, e->>'verdict' AS verdict,
       CASE WHEN acc_s.s = acc.s0 THEN 'refresh'
            WHEN EXISTS (SELECT 1 FROM onboarding.transition t
                          WHERE t.entity = 'account' AND (t.provider IS NULL OR t.provider = 'qitech')
                            AND t.from_status = acc.s0 AND t.to_status = acc_s.s) THEN 'change'
            ELSE 'illegal' END AS expected
  FROM acc CROSS JOIN acc_s
 CROSS JOIN LATERAL onboarding.explain(jsonb_build_object('webhook_type', 'account', 'key', 'fold-acc-' || acc.s0,
           'status', acc_s.raw, 'event_datetime', '2024-01-02 10:00:00')) x
 CROSS JOIN LATERAL jsonb_array_elements(x->'effects') e
 WHERE e->>'entity' = 'account';
SELECT verdict, outcome, count(*) FROM acc_judged GROUP BY 1, 2 ORDER BY 1, 2;
-- the pairs judged otherwise than the rule tables say: none
SELECT s0, s, from_status, verdict, expected FROM acc_judged
 WHERE verdict IS DISTINCT FROM expected OR from_status IS DISTINCT FROM s0
    OR outcome <> CASE WHEN expected = 'illegal' THEN 'illegal_transition' ELSE 'applied' END;
-- no state yet: every status creates the row
SELECT acc_s.s, e->>'verdict' AS verdict, e->>'from' AS from_status
  FROM acc_s CROSS JOIN LATERAL jsonb_array_elements(onboarding.explain(jsonb_build_object(
           'webhook_type', 'account', 'key', 'fold-acc-new', 'status', acc_s.raw,
           'event_datetime', '2024-01-02 10:00:00'))->'effects') e
 ORDER BY 1;

-- Celcoin proposals: one per state of the proposal graph, and every status a
-- proposal delivery (entity onboarding-proposal) can carry
CREATE TEMP TABLE prop(s0 text);
INSERT INTO prop SELECT unnest(enum_range(NULL::onboarding.proposal_status))::text;
SELECT count(*) AS created
  FROM prop, LATERAL onboarding.ingest(jsonb_build_object('entity', 'onboarding-proposal', 'status', 'CREATED',
           'createTimestamp', '2024-01-01T10:00:00Z',
           'body', jsonb_build_object('proposalId', 'fold-prop-' || s0, 'documentNumber', '61512061263',
                                      'proposalType', 'PF'))) i;
SELECT count(*) AS forced
  FROM prop, LATERAL onboarding.force_status('proposal', 'celcoin', 'fold-prop-' || s0, s0, 'suite fold') f
 WHERE s0 <> 'created';
CREATE TEMP TABLE prop_s AS
SELECT status::text AS s, min(status_raw) AS raw FROM onboarding.status_map
 WHERE provider = 'celcoin' AND entity = 'proposal' AND event_type = 'onboarding-proposal' GROUP BY status;
CREATE TEMP TABLE prop_judged AS
SELECT prop.s0, prop_s.s, x->>'outcome' AS outcome, e->>'from' AS from_status, e->>'verdict' AS verdict,
       CASE WHEN prop_s.s = prop.s0 THEN 'refresh'
            WHEN EXISTS (SELECT 1 FROM onboarding.transition t
                          WHERE t.entity = 'proposal' AND (t.provider IS NULL OR t.provider = 'celcoin')
                            AND t.from_status = prop.s0 AND t.to_status = prop_s.s) THEN 'change'
            ELSE 'illegal' END AS expected
  FROM prop CROSS JOIN prop_s
 CROSS JOIN LATERAL onboarding.explain(jsonb_build_object('entity', 'onboarding-proposal', 'status', prop_s.raw,
           'createTimestamp', '2024-01-02T10:00:00Z',
           'body', jsonb_build_object('proposalId', 'fold-prop-' || prop.s0, 'documentNumber', '61512061263',
                                      'proposalType', 'PF'))) x
 CROSS JOIN LATERAL jsonb_array_elements(x->'effects') e
 WHERE e->>'entity' = 'proposal';
SELECT verdict, outcome, count(*) FROM prop_judged GROUP BY 1, 2 ORDER BY 1, 2;
SELECT s0, s, from_status, verdict, expected FROM prop_judged
 WHERE verdict IS DISTINCT FROM expected OR from_status IS DISTINCT FROM s0
    OR outcome <> CASE WHEN expected = 'illegal' THEN 'illegal_transition' ELSE 'applied' END;

-- Fitbank accounts: the same graph through another provider's body (the
-- status a code in AccountConditionType, the time in SendDate)
CREATE TEMP TABLE fbacc(s0 text);
INSERT INTO fbacc SELECT unnest(enum_range(NULL::onboarding.account_status))::text;
SELECT count(*) AS created
  FROM fbacc, LATERAL onboarding.ingest(jsonb_build_object('Method', 'UpdateAccount', 'AccountKey', 'fold-fb-' || s0,
           'TaxNumber', '615.120.612-63', 'AccountConditionType', 0, 'AccountStatus', 0, 'SendDate', '2024-01-01T10:00:00-03:00')) i;
SELECT count(*) AS forced
  FROM fbacc, LATERAL onboarding.force_status('account', 'fitbank', 'fold-fb-' || s0, s0, 'suite fold') f
 WHERE s0 <> 'created';
CREATE TEMP TABLE fbacc_s AS
SELECT status::text AS s, min(status_raw) AS raw FROM onboarding.status_map
 WHERE provider = 'fitbank' AND entity = 'account' AND event_type = 'UpdateAccount' GROUP BY status;
CREATE TEMP TABLE fbacc_judged AS
SELECT fbacc.s0, fbacc_s.s, x->>'outcome' AS outcome, e->>'from' AS from_status, e->>'verdict' AS verdict,
       CASE WHEN fbacc_s.s = fbacc.s0 THEN 'refresh'
            WHEN EXISTS (SELECT 1 FROM onboarding.transition t
                          WHERE t.entity = 'account' AND (t.provider IS NULL OR t.provider = 'fitbank')
                            AND t.from_status = fbacc.s0 AND t.to_status = fbacc_s.s) THEN 'change'
            ELSE 'illegal' END AS expected
  FROM fbacc CROSS JOIN fbacc_s
 CROSS JOIN LATERAL onboarding.explain(jsonb_build_object('Method', 'UpdateAccount', 'AccountKey', 'fold-fb-' || fbacc.s0,
           'TaxNumber', '615.120.612-63', 'AccountConditionType', fbacc_s.raw::int, 'AccountStatus', 1,
           'SendDate', '2024-01-02T10:00:00-03:00')) x
 CROSS JOIN LATERAL jsonb_array_elements(x->'effects') e
 WHERE e->>'entity' = 'account';
SELECT verdict, outcome, count(*) FROM fbacc_judged GROUP BY 1, 2 ORDER BY 1, 2;
SELECT s0, s, from_status, verdict, expected FROM fbacc_judged
 WHERE verdict IS DISTINCT FROM expected OR from_status IS DISTINCT FROM s0
    OR outcome <> CASE WHEN expected = 'illegal' THEN 'illegal_transition' ELSE 'applied' END;

-- Fitbank closure requests: the closure graph (an approved one also closes
-- its account, a consequence: only the closure's own verdict is judged here)
CREATE TEMP TABLE clo(s0 text);
INSERT INTO clo SELECT unnest(enum_range(NULL::onboarding.closure_status))::text;
SELECT count(*) AS created
  FROM clo, LATERAL onboarding.ingest(jsonb_build_object('Method', 'UpdateCloseAccount', 'AccountKey', 'fold-clo-' || s0,
           'CloseAccountInformationStatus', 0, 'SendDate', '2024-01-01T10:00:00-03:00')) i;
SELECT count(*) AS forced
  FROM clo, LATERAL onboarding.force_status('closure', 'fitbank', 'fold-clo-' || s0, s0, 'suite fold') f
 WHERE s0 <> 'created';
CREATE TEMP TABLE clo_s AS
SELECT status::text AS s, min(status_raw) AS raw FROM onboarding.status_map
 WHERE provider = 'fitbank' AND entity = 'closure' AND event_type = 'UpdateCloseAccount' GROUP BY status;
CREATE TEMP TABLE clo_judged AS
SELECT clo.s0, clo_s.s, e->>'from' AS from_status, e->>'verdict' AS verdict,
       CASE WHEN clo_s.s = clo.s0 THEN 'refresh'
            WHEN EXISTS (SELECT 1 FROM onboarding.transition t
                          WHERE t.entity = 'closure' AND (t.provider IS NULL OR t.provider = 'fitbank')
                            AND t.from_status = clo.s0 AND t.to_status = clo_s.s) THEN 'change'
            ELSE 'illegal' END AS expected
  FROM clo CROSS JOIN clo_s
 CROSS JOIN LATERAL onboarding.explain(jsonb_build_object('Method', 'UpdateCloseAccount', 'AccountKey', 'fold-clo-' || clo.s0,
           'CloseAccountInformationStatus', clo_s.raw::int, 'SendDate', '2024-01-02T10:00:00-03:00')) x
 CROSS JOIN LATERAL jsonb_array_elements(x->'effects') e
 WHERE e->>'entity' = 'closure';
SELECT verdict, count(*) FROM clo_judged GROUP BY 1 ORDER BY 1;
SELECT s0, s, from_status, verdict, expected FROM clo_judged
 WHERE verdict IS DISTINCT FROM expected OR from_status IS DISTINCT FROM s0;

-- Fitbank documents: the document graph (eleven statuses, a code in
-- Document.DocumentStatus)
CREATE TEMP TABLE doc(s0 text);
INSERT INTO doc SELECT unnest(enum_range(NULL::onboarding.document_status))::text;
SELECT count(*) AS created
  FROM doc, LATERAL onboarding.ingest(jsonb_build_object('Method', 'UpdatePersonDocument',
           'Document', jsonb_build_object('DocumentKey', 'fold-doc-' || s0, 'DocumentStatus', 4,
                                          'DocumentType', 0, 'TaxNumber', '24952122204'),
           'SendDate', '2024-01-01T10:00:00-03:00')) i;
SELECT count(*) AS forced
  FROM doc, LATERAL onboarding.force_status('document', 'fitbank', 'fold-doc-' || s0, s0, 'suite fold') f
 WHERE s0 <> 'sent';
CREATE TEMP TABLE doc_s AS
SELECT status::text AS s, min(status_raw) AS raw FROM onboarding.status_map
 WHERE provider = 'fitbank' AND entity = 'document' AND event_type = 'UpdatePersonDocument' GROUP BY status;
CREATE TEMP TABLE doc_judged AS
SELECT doc.s0, doc_s.s, x->>'outcome' AS outcome, e->>'from' AS from_status, e->>'verdict' AS verdict,
       CASE WHEN doc_s.s = doc.s0 THEN 'refresh'
            WHEN EXISTS (SELECT 1 FROM onboarding.transition t
                          WHERE t.entity = 'document' AND (t.provider IS NULL OR t.provider = 'fitbank')
                            AND t.from_status = doc.s0 AND t.to_status = doc_s.s) THEN 'change'
            ELSE 'illegal' END AS expected
  FROM doc CROSS JOIN doc_s
 CROSS JOIN LATERAL onboarding.explain(jsonb_build_object('Method', 'UpdatePersonDocument',
           'Document', jsonb_build_object('DocumentKey', 'fold-doc-' || doc.s0, 'DocumentStatus', doc_s.raw::int,
                                          'DocumentType', 0, 'TaxNumber', '24952122204'),
           'SendDate', '2024-01-02T10:00:00-03:00')) x
 CROSS JOIN LATERAL jsonb_array_elements(x->'effects') e
 WHERE e->>'entity' = 'document';
SELECT verdict, outcome, count(*) FROM doc_judged GROUP BY 1, 2 ORDER BY 1, 2;
SELECT s0, s, from_status, verdict, expected FROM doc_judged
 WHERE verdict IS DISTINCT FROM expected OR from_status IS DISTINCT FROM s0
    OR outcome <> CASE WHEN expected = 'illegal' THEN 'illegal_transition' ELSE 'applied' END;

-- Celcoin background checks: the check graph (a proposal's column of its
-- own; a check in analysis also moves its proposal, a consequence: only the
-- check's own verdict is judged here)
CREATE TEMP TABLE chk(s0 text);
INSERT INTO chk SELECT unnest(enum_range(NULL::onboarding.check_status))::text;
SELECT count(*) AS created
  FROM chk, LATERAL onboarding.ingest(jsonb_build_object('entity', 'onboarding-backgroundcheck', 'status', 'CREATED',
           'createTimestamp', '2024-01-01T10:00:00Z', 'body', jsonb_build_object('proposalId', 'fold-chk-' || s0))) i;
SELECT count(*) AS forced
  FROM chk, LATERAL onboarding.force_status('background_check', 'celcoin', 'fold-chk-' || s0, s0, 'suite fold') f
 WHERE s0 <> 'created';
CREATE TEMP TABLE chk_s AS
SELECT status::text AS s, min(status_raw) AS raw FROM onboarding.status_map
 WHERE provider = 'celcoin' AND entity = 'background_check' AND event_type = 'onboarding-backgroundcheck'
 GROUP BY status;
CREATE TEMP TABLE chk_judged AS
SELECT chk.s0, chk_s.s, e->>'from' AS from_status, e->>'verdict' AS verdict,
       CASE WHEN chk_s.s = chk.s0 THEN 'refresh'
            WHEN EXISTS (SELECT 1 FROM onboarding.transition t
                          WHERE t.entity = 'check' AND (t.provider IS NULL OR t.provider = 'celcoin')
                            AND t.from_status = chk.s0 AND t.to_status = chk_s.s) THEN 'change'
            ELSE 'illegal' END AS expected
  FROM chk CROSS JOIN chk_s
 CROSS JOIN LATERAL onboarding.explain(jsonb_build_object('entity', 'onboarding-backgroundcheck', 'status', chk_s.raw,
           'createTimestamp', '2024-01-02T10:00:00Z', 'body', jsonb_build_object('proposalId', 'fold-chk-' || chk.s0))) x
 CROSS JOIN LATERAL jsonb_array_elements(x->'effects') e
 WHERE e->>'entity' = 'background_check';
SELECT verdict, count(*) FROM chk_judged GROUP BY 1 ORDER BY 1;
SELECT s0, s, from_status, verdict, expected FROM chk_judged
 WHERE verdict IS DISTINCT FROM expected OR from_status IS DISTINCT FROM s0;

-- explain() wrote nothing, and what is stored is what a rebuild gives
SELECT count(*) AS deliveries FROM onboarding.inbox WHERE subject LIKE 'fold-%';
SELECT count(*) AS differences FROM onboarding.verify();
ROLLBACK;
\c :regress_db
DROP DATABASE onboarding_fold;
