-- test/bench/peer.sql — the benchmark's hand-written peer: what a competent
-- PostgreSQL user would build without the extension, in plain SQL and
-- PL/pgSQL, to be measured in the same run as the plain table and the inbox.
--
-- Creates (in the current database, replacing it) schema `peer`:
--
--   peer.inbox       the append-only log: id identity, received_at, payload
--                    jsonb, what the trigger made of it (provider, event,
--                    subject, status, event time), outcome and detail, and
--                    body_hash (jsonb_hash_extended) with a btree index on it
--   peer.state       ONE generic upserted state table for every entity, keyed
--                    by (provider, kind, key): kind is account, proposal,
--                    document, closure, background_check or documentscopy
--                    (instead of one table per entity: the peer keeps status,
--                    provider status, tax id and event times, no other field)
--   peer.status_map  (provider, kind, status_raw) -> status, the SPEC §5 tables
--   peer.transition  (kind, from_status, to_status), the SPEC §6 graphs,
--                    consulted for legality of every move
--   peer.history     one row per status change, indexed on (provider, kind, key)
--
-- and a BEFORE INSERT FOR EACH ROW trigger in PL/pgSQL on peer.inbox that,
-- for each delivery:
--   1. dedupes: looks for an earlier delivery with the same hash and an equal
--      body (jsonb equality) through the index -> outcome `duplicate`. No
--      lock: two sessions storing the same body at once may both miss the
--      other (an advisory lock per hash held to commit would fill the lock
--      table in a large COPY); the second then refreshes the state row it
--      waits for, which changes nothing;
--   2. parses the three providers' bodies enough to find provider, event,
--      entity kind, key, status and event time:
--        QI Tech   webhook_type; key (else data.account_request_key); status
--                  (else data.status); event_datetime -> account
--        Fitbank   Method; UpdateAccount (AccountKey, else the bare TaxNumber;
--                  AccountConditionType) -> account; UpdatePersonDocument and
--                  *Signer* (Document.DocumentKey, else taxpayer:type[:signer];
--                  Document.DocumentStatus) -> document; UpdatePersonCondition
--                  (bare TaxNumber; MessageClassification) -> proposal;
--                  UpdateCloseAccount (AccountKey; CloseAccountInformationStatus)
--                  -> closure; SendDate (the .NET sentinel is no time)
--        Celcoin   entity, upper-cased status, createTimestamp|createTimeStamp;
--                  onboarding-proposal -> proposal, onboarding-backgroundcheck
--                  and onboarding-documentscopy -> their check (keyed by
--                  body.proposalId), onboarding-file -> one document per file
--                  (proposalId:type, status sent), onboarding-create and
--                  account-status -> account (body.onboardingId)
--      Naive times are read in America/Sao_Paulo. Anything else (no provider,
--      unknown event or status) -> `unrecognized`; a missing key or status,
--      or a body that is not an object -> `invalid`;
--   3. maps the status through peer.status_map and, for each entity row the
--      delivery addresses: locks the state row (SELECT ... FOR UPDATE, or
--      INSERT ... ON CONFLICT DO NOTHING for a new one); an event older than
--      the row's latest -> `stale` (the state does not move); the same status
--      -> a refresh of the times; a move that peer.transition allows -> UPDATE
--      plus a history row; any other move -> `illegal_transition`.
--
-- What it does NOT do, and the extension does: fold a late event in at its
-- place (re-deriving the entity's history and the outcomes of later
-- deliveries: here a late event is only marked `stale`); consequences across
-- entities (a check rejecting its proposal, onboarding-create moving the
-- proposal, an approved closure closing the account); non-status fields
-- (names, bank details, URLs, reasons, tenants); taxid validation; raw text
-- bodies and their repair; guarding the state tables against direct UPDATEs;
-- order of equal event times by the graph. Each of these would cost the peer
-- more, so the comparison is, if anything, kind to it.
--
-- psql: \i test/bench/peer.sql (run.sh recreates it before each load).

SET client_min_messages = warning;
DROP SCHEMA IF EXISTS peer CASCADE;
CREATE SCHEMA peer;

CREATE TABLE peer.inbox (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at  timestamptz NOT NULL DEFAULT now(),
    payload      jsonb NOT NULL,
    body_hash    bigint,
    provider     text,
    event_type   text,
    subject      text,
    status_raw   text,
    event_at     timestamptz,
    outcome      text,
    detail       text
);
CREATE INDEX inbox_body_hash_idx ON peer.inbox (body_hash);

CREATE TABLE peer.state (
    provider        text NOT NULL,
    kind            text NOT NULL,
    key             text NOT NULL,
    status          text NOT NULL,
    provider_status text,
    tax_id          text,
    first_event_at  timestamptz,
    last_event_at   timestamptz,
    last_inbox_id   bigint NOT NULL,
    PRIMARY KEY (provider, kind, key)
);

CREATE TABLE peer.status_map (
    provider   text NOT NULL,
    kind       text NOT NULL,
    status_raw text NOT NULL,
    status     text NOT NULL,
    PRIMARY KEY (provider, kind, status_raw)
);

CREATE TABLE peer.transition (
    kind        text NOT NULL,
    from_status text NOT NULL,
    to_status   text NOT NULL,
    PRIMARY KEY (kind, from_status, to_status)
);

CREATE TABLE peer.history (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider    text NOT NULL,
    kind        text NOT NULL,
    key         text NOT NULL,
    from_status text,
    to_status   text NOT NULL,
    event_at    timestamptz,
    inbox_id    bigint NOT NULL
);
CREATE INDEX history_entity_idx ON peer.history (provider, kind, key);

-- SPEC §5: what each provider status means.
INSERT INTO peer.status_map (provider, kind, status_raw, status) VALUES
    ('qitech', 'account', 'pending_bacen_validation', 'requested'),
    ('qitech', 'account', 'pending_kyc_analysis', 'in_analysis'),
    ('qitech', 'account', 'pending_additional_data', 'pending_data'),
    ('qitech', 'account', 'rejected', 'rejected'),
    ('qitech', 'account', 'account_rejected', 'rejected'),
    ('qitech', 'account', 'account_opened', 'active'),
    ('fitbank', 'account', '0', 'created'), ('fitbank', 'account', '1', 'limited'),
    ('fitbank', 'account', '2', 'active'), ('fitbank', 'account', '3', 'blocked'),
    ('fitbank', 'account', '4', 'closed'),
    ('fitbank', 'document', '0', 'awaiting_validation'), ('fitbank', 'document', '1', 'validated'),
    ('fitbank', 'document', '2', 'invalid'), ('fitbank', 'document', '3', 'expired'),
    ('fitbank', 'document', '4', 'sent'), ('fitbank', 'document', '5', 'resubmitted'),
    ('fitbank', 'document', '6', 'disapproved'), ('fitbank', 'document', '7', 'error'),
    ('fitbank', 'document', '8', 'inexistent'), ('fitbank', 'document', '9', 'suspended'),
    ('fitbank', 'document', '10', 'typified'),
    ('fitbank', 'proposal', '0', 'pending_data'), ('fitbank', 'proposal', '1', 'rejected'),
    ('fitbank', 'proposal', '2', 'rejected'), ('fitbank', 'proposal', '3', 'expired'),
    ('fitbank', 'proposal', '4', 'approved'),
    ('fitbank', 'closure', '0', 'created'), ('fitbank', 'closure', '1', 'processing'),
    ('fitbank', 'closure', '2', 'error'), ('fitbank', 'closure', '3', 'pending'),
    ('fitbank', 'closure', '4', 'disapproved'), ('fitbank', 'closure', '5', 'approved'),
    ('fitbank', 'closure', '6', 'automatic'),
    ('celcoin', 'proposal', 'CREATED', 'created'), ('celcoin', 'proposal', 'PENDING', 'pending'),
    ('celcoin', 'proposal', 'PENDING_DOCUMENTSCOPY', 'in_analysis'),
    ('celcoin', 'proposal', 'PROCESSING_DOCUMENTSCOPY', 'in_analysis'),
    ('celcoin', 'proposal', 'APPROVED', 'approved'), ('celcoin', 'proposal', 'REPROVED', 'rejected'),
    ('celcoin', 'proposal', 'RESOURCE_CREATED', 'account_created'),
    ('celcoin', 'proposal', 'RESOURCE_ERROR', 'account_error'),
    ('celcoin', 'document', 'SENT', 'sent'),
    ('celcoin', 'account', 'CONFIRMED', 'active'), ('celcoin', 'account', 'ERROR', 'failed'),
    ('celcoin', 'account', 'ATIVO', 'active'), ('celcoin', 'account', 'BLOQUEADO', 'blocked'),
    ('celcoin', 'account', 'BLOQUEIO-JUDICIAL', 'blocked'), ('celcoin', 'account', 'BLOQUEIO-RFB', 'blocked'),
    ('celcoin', 'account', 'BLOQUEADO-RFB', 'blocked'), ('celcoin', 'account', 'DESBLOQUEIO-JUDICIAL', 'active'),
    ('celcoin', 'account', 'EM CANCELAMENTO', 'closing'), ('celcoin', 'account', 'ENCERRADO', 'closed');
INSERT INTO peer.status_map (provider, kind, status_raw, status)
SELECT 'celcoin', k, r, s
  FROM unnest(ARRAY['background_check', 'documentscopy']) k,
       (VALUES ('CREATED', 'created'), ('PENDING', 'pending'), ('PROCESSING', 'processing'),
               ('APPROVED', 'approved'), ('REPROVED', 'rejected')) v (r, s);

-- SPEC §6: the legal moves (the Fitbank-only proposal moves apply to all).
INSERT INTO peer.transition (kind, from_status, to_status)
SELECT g.kind, g.from_status, t
  FROM (VALUES
    ('account', 'requested', '{in_analysis,pending_data,created,limited,active,rejected,failed}'),
    ('account', 'in_analysis', '{pending_data,created,limited,active,rejected,failed}'),
    ('account', 'pending_data', '{in_analysis,created,limited,active,rejected,failed}'),
    ('account', 'created', '{limited,active,blocked,closing,closed}'),
    ('account', 'limited', '{active,blocked,closing,closed}'),
    ('account', 'active', '{limited,blocked,closing,closed}'),
    ('account', 'blocked', '{limited,active,closing,closed}'),
    ('account', 'closing', '{active,blocked,closed}'),
    ('account', 'failed', '{created,active}'),
    ('proposal', 'created', '{pending,in_analysis,pending_data,approved,rejected,expired}'),
    ('proposal', 'pending', '{in_analysis,pending_data,approved,rejected,expired}'),
    ('proposal', 'in_analysis', '{pending,pending_data,approved,rejected,expired}'),
    ('proposal', 'pending_data', '{pending,in_analysis,approved,rejected,expired}'),
    ('proposal', 'approved', '{account_created,account_error}'),
    ('proposal', 'account_error', '{account_created}'),
    ('proposal', 'rejected', '{pending_data,approved}'),
    ('proposal', 'expired', '{pending_data,approved}'),
    ('background_check', 'created', '{pending,processing,approved,rejected}'),
    ('background_check', 'pending', '{processing,approved,rejected}'),
    ('background_check', 'processing', '{pending,approved,rejected}'),
    ('documentscopy', 'created', '{pending,processing,approved,rejected}'),
    ('documentscopy', 'pending', '{processing,approved,rejected}'),
    ('documentscopy', 'processing', '{pending,approved,rejected}'),
    ('document', 'sent', '{awaiting_validation,typified,validated,invalid,disapproved,error,inexistent}'),
    ('document', 'awaiting_validation', '{typified,validated,invalid,disapproved,error,inexistent,expired,suspended}'),
    ('document', 'resubmitted', '{awaiting_validation,typified,validated,invalid,disapproved,error}'),
    ('document', 'typified', '{awaiting_validation,validated,invalid,disapproved}'),
    ('document', 'validated', '{expired,suspended,invalid,disapproved,resubmitted}'),
    ('document', 'invalid', '{resubmitted,sent,awaiting_validation}'),
    ('document', 'disapproved', '{resubmitted,sent,awaiting_validation}'),
    ('document', 'error', '{resubmitted,sent,awaiting_validation}'),
    ('document', 'inexistent', '{resubmitted,sent,awaiting_validation}'),
    ('document', 'expired', '{resubmitted,sent,awaiting_validation}'),
    ('document', 'suspended', '{validated,resubmitted,awaiting_validation,invalid}'),
    ('closure', 'created', '{processing,pending,error,disapproved,approved,automatic}'),
    ('closure', 'processing', '{pending,error,disapproved,approved}'),
    ('closure', 'pending', '{processing,error,disapproved,approved}'),
    ('closure', 'error', '{created,processing,pending}'),
    ('closure', 'automatic', '{processing,pending,error,approved}'),
    ('closure', 'disapproved', '{created}')
  ) g (kind, from_status, tos),
  unnest(g.tos::text[]) t;

-- A provider's time: ISO-ish text with an optional offset or Z; naive
-- times are São Paulo's; the .NET sentinel and anything unreadable are NULL
-- (checked by pattern first, so that no exception block is needed).
CREATE FUNCTION peer.event_time(t text) RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF t IS NULL OR t LIKE '0001-01-01%'
       OR t !~ '^\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d(:?\d\d)?)?$' THEN
        RETURN NULL;
    ELSIF t ~ '(Z|[+-]\d\d(:?\d\d)?)$' THEN
        RETURN t::timestamptz;
    ELSE
        RETURN t::timestamp AT TIME ZONE 'America/Sao_Paulo';
    END IF;
END $$;

-- Apply one status event to one entity row; returns the outcome.
CREATE FUNCTION peer.apply(p_provider text, p_kind text, p_key text, p_status_raw text,
                           p_tax_id text, p_at timestamptz, p_inbox_id bigint)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    s   text;
    cur peer.state;
BEGIN
    SELECT m.status INTO s FROM peer.status_map m
     WHERE m.provider = p_provider AND m.kind = p_kind AND m.status_raw = p_status_raw;
    IF NOT FOUND THEN
        RETURN 'unrecognized';
    END IF;

    SELECT * INTO cur FROM peer.state
     WHERE provider = p_provider AND kind = p_kind AND key = p_key FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO peer.state (provider, kind, key, status, provider_status, tax_id,
                                first_event_at, last_event_at, last_inbox_id)
        VALUES (p_provider, p_kind, p_key, s, p_status_raw, p_tax_id, p_at, p_at, p_inbox_id)
        ON CONFLICT (provider, kind, key) DO NOTHING;
        IF FOUND THEN
            INSERT INTO peer.history (provider, kind, key, from_status, to_status, event_at, inbox_id)
            VALUES (p_provider, p_kind, p_key, NULL, s, p_at, p_inbox_id);
            RETURN 'applied';
        END IF;
        -- another session created it meanwhile
        SELECT * INTO cur FROM peer.state
         WHERE provider = p_provider AND kind = p_kind AND key = p_key FOR UPDATE;
    END IF;

    IF p_at < cur.last_event_at THEN
        RETURN 'stale';
    ELSIF s = cur.status THEN
        UPDATE peer.state
           SET provider_status = p_status_raw, tax_id = coalesce(p_tax_id, tax_id),
               last_event_at = greatest(last_event_at, p_at), last_inbox_id = p_inbox_id
         WHERE provider = p_provider AND kind = p_kind AND key = p_key;
        RETURN 'applied';
    ELSIF EXISTS (SELECT 1 FROM peer.transition t
                   WHERE t.kind = p_kind AND t.from_status = cur.status AND t.to_status = s) THEN
        UPDATE peer.state
           SET status = s, provider_status = p_status_raw, tax_id = coalesce(p_tax_id, tax_id),
               last_event_at = greatest(last_event_at, p_at), last_inbox_id = p_inbox_id
         WHERE provider = p_provider AND kind = p_kind AND key = p_key;
        INSERT INTO peer.history (provider, kind, key, from_status, to_status, event_at, inbox_id)
        VALUES (p_provider, p_kind, p_key, cur.status, s, p_at, p_inbox_id);
        RETURN 'applied';
    ELSE
        RETURN 'illegal_transition';
    END IF;
END $$;

-- The trigger: dedupe, parse, apply (see the top of this file).
CREATE FUNCTION peer.inbox_before_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    b       jsonb := NEW.payload;
    body    jsonb;
    kind    text;
    key     text;
    tax     text;
    status  text;
    f       jsonb;
    o       text;
BEGIN
    NEW.body_hash := jsonb_hash_extended(b, 0);
    IF EXISTS (SELECT 1 FROM peer.inbox i WHERE i.body_hash = NEW.body_hash AND i.payload = b) THEN
        NEW.outcome := 'duplicate';
        RETURN NEW;
    END IF;
    IF jsonb_typeof(b) IS DISTINCT FROM 'object' THEN
        NEW.outcome := 'invalid';
        NEW.detail := 'the body is not a JSON object';
        RETURN NEW;
    END IF;

    IF jsonb_typeof(b->'webhook_type') = 'string' THEN
        NEW.provider := 'qitech';
        NEW.event_type := b->>'webhook_type';
        kind := 'account';
        key := coalesce(b->>'key', b#>>'{data,account_request_key}');
        status := coalesce(b->>'status', b#>>'{data,status}');
        NEW.event_at := peer.event_time(b->>'event_datetime');
    ELSIF jsonb_typeof(b->'Method') = 'string' THEN
        NEW.provider := 'fitbank';
        NEW.event_type := b->>'Method';
        NEW.event_at := peer.event_time(b->>'SendDate');
        tax := nullif(regexp_replace(b->>'TaxNumber', '[^0-9A-Za-z]', '', 'g'), '');
        IF NEW.event_type = 'UpdateAccount' THEN
            kind := 'account';
            key := coalesce(nullif(b->>'AccountKey', ''), tax);
            status := b->>'AccountConditionType';
        ELSIF (NEW.event_type = 'UpdatePersonDocument' OR NEW.event_type LIKE '%Signer%')
              AND jsonb_typeof(b->'Document') = 'object' THEN
            kind := 'document';
            tax := nullif(regexp_replace(b#>>'{Document,TaxNumber}', '[^0-9A-Za-z]', '', 'g'), '');
            key := coalesce(nullif(b#>>'{Document,DocumentKey}', ''),
                            tax || ':' || (b#>>'{Document,DocumentType}')
                                || CASE WHEN NEW.event_type LIKE '%Signer%' THEN ':signer' ELSE '' END);
            status := b#>>'{Document,DocumentStatus}';
        ELSIF NEW.event_type = 'UpdatePersonCondition' THEN
            kind := 'proposal';
            key := tax;
            status := b->>'MessageClassification';
        ELSIF NEW.event_type = 'UpdateCloseAccount' THEN
            kind := 'closure';
            key := nullif(b->>'AccountKey', '');
            status := b->>'CloseAccountInformationStatus';
        END IF;
    ELSIF jsonb_typeof(b->'entity') = 'string' AND jsonb_typeof(b->'body') = 'object' THEN
        NEW.provider := 'celcoin';
        NEW.event_type := b->>'entity';
        NEW.event_at := peer.event_time(coalesce(b->>'createTimestamp', b->>'createTimeStamp'));
        body := b->'body';
        tax := nullif(regexp_replace(body->>'documentNumber', '[^0-9A-Za-z]', '', 'g'), '');
        status := upper(b->>'status');
        CASE NEW.event_type
        WHEN 'onboarding-proposal' THEN kind := 'proposal'; key := body->>'proposalId';
        WHEN 'onboarding-backgroundcheck' THEN kind := 'background_check'; key := body->>'proposalId';
        WHEN 'onboarding-documentscopy' THEN kind := 'documentscopy'; key := body->>'proposalId';
        WHEN 'onboarding-create', 'account-status' THEN kind := 'account'; key := body->>'onboardingId';
        WHEN 'onboarding-file' THEN
            -- one document per file (or the single archive in body.url)
            NEW.subject := body->>'proposalId';
            NEW.status_raw := b->>'status';
            IF NEW.subject IS NULL THEN
                NEW.outcome := 'invalid';
                NEW.detail := 'no body.proposalId';
                RETURN NEW;
            END IF;
            NEW.outcome := 'applied';
            FOR f IN SELECT jsonb_array_elements(CASE WHEN jsonb_typeof(body->'files') = 'array'
                                                      THEN body->'files' ELSE '[{}]' END)
            LOOP
                o := peer.apply('celcoin', 'document', NEW.subject || ':' || coalesce(f->>'type', 'ARCHIVE'),
                                'SENT', tax, NEW.event_at, NEW.id);
                IF o <> 'applied' THEN NEW.outcome := o; END IF;
            END LOOP;
            RETURN NEW;
        ELSE NULL;
        END CASE;
    END IF;

    NEW.subject := key;
    NEW.status_raw := status;
    IF NEW.provider IS NULL OR kind IS NULL THEN
        NEW.outcome := 'unrecognized';
        NEW.detail := 'unknown provider or event';
    ELSIF key IS NULL OR status IS NULL THEN
        NEW.outcome := 'invalid';
        NEW.detail := 'no key or no status';
    ELSE
        NEW.outcome := peer.apply(NEW.provider, kind, key, status, tax, NEW.event_at, NEW.id);
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER inbox_pipeline BEFORE INSERT ON peer.inbox
    FOR EACH ROW EXECUTE FUNCTION peer.inbox_before_insert();

ANALYZE peer.status_map, peer.transition;
