#!/usr/bin/env python3
"""Hostile deliveries for test/scripts/fuzz.sh, written as a psql script.

    fuzz.py FIXTURES_DIR COUNT SEED OUT_PREFIX [BATCHES]

writes the deliveries in BATCHES psql scripts OUT_PREFIX.1.sql, ... (one by
default), so that the test can check the database between them.

Starts from every fixture in test/fixtures (one real body per provider
event) and breaks it in every way a provider, a proxy or an attacker could:

  types     every field the pipeline reads set to the wrong JSON type
            (strings where numbers belong and the reverse, objects, arrays,
            nulls, booleans, empty values, out-of-range codes), or removed
  times     event times that are not times (and "now", "infinity", ...)
  taxids    taxpayer numbers that are not CPFs or CNPJs
  unknown   unknown providers and events, JSON that is not an object
  huge      1 MB strings in keys, statuses, times, names, and field names
  long_keys keys, statuses, event names of a few kB that do not compress
  mb_keys   keys (and the parts derived keys are made of: a Celcoin file's
            proposalId and type, a Fitbank document's taxpayer and
            DocumentType) longer than 1024 bytes, made of 2-, 3- and 4-byte
            UTF-8 characters laid out so that byte 40 and byte 1024 of the
            key fall inside a character; now and then a shorter one (over 40
            bytes, within the limit) cut the same way at byte 40
  deep      nesting just under and over 1000 levels (100,000 as text)
  numbers   numbers numeric cannot hold, and ones it just can
  truncated a real body cut anywhere
  escapes   invalid escapes, lone surrogates and \\u0000 in raw text
  syntax    not JSON at all: HTML, single quotes, NaN, comments, trailing
            commas, raw control characters, a BOM, empty bodies, ...

Every 7th body is followed by an exact re-send of an earlier body (kind
"resend", often one of the long-key ones, invalid ones included), through
the same door or another one that can carry it.

Each body goes through one door: onboarding.ingest (jsonb) or INSERT
(payload) when jsonb can hold it, onboarding.ingest_text or INSERT (raw)
always, and now and then INSERT (payload, raw) or an explicit provider.
Every delivery is tagged in its headers with {"fuzz": n, "kind": ...,
"door": ...} and, when it was sent as text, the MD5 of that text, so the
test can check that each is stored exactly once and byte for byte.

Every body jsonb can hold is first put to onboarding.explain(), in the
delivery's transaction right before it, and the outcome explain() predicted
is kept in public.fz_explain(n, predicted); the stored outcome the delivery
returned goes to public.fz_got(n, outcome) (both created by the test), so
the test can compare them.  (Not for nesting deeper than the raw parser
takes, sent as text: there the door, not the body, decides.)  On stdout: the
counts per kind and per door, as "name count" lines.
"""
import collections
import hashlib
import json
import os
import random
import sys

MB = 1024 * 1024

# Every field the pipeline reads (src/detect.c, README "What each provider
# sends"), as paths into the body; a list index is written as an int.
READ_FIELDS = {
    "qitech": [
        ["webhook_type"], ["key"], ["status"], ["event_datetime"], ["rejection_reason"],
        ["data"], ["data", "account_request_key"], ["data", "status"],
        ["data", "account_info"], ["data", "account_info", "account_branch"],
        ["data", "account_info", "account_number"], ["data", "account_info", "account_digit"],
        ["data", "account_info", "financial_institution_code"],
        ["data", "account_owner"], ["data", "account_owner", "name"],
        ["data", "account_owner", "document_number"],
    ],
    "fitbank": [
        ["Method"], ["AccountKey"], ["TaxNumber"], ["Taxnumber"], ["AccountConditionType"],
        ["AccountStatus"], ["SendDate"], ["Bank"], ["BankBranch"], ["BankAccount"],
        ["BankAccountDigit"], ["SpbAccount"], ["SpbAccount", "Bank"], ["SpbAccount", "BankBranch"],
        ["SpbAccount", "BankAccount"], ["SpbAccount", "BankAccountDigit"], ["PartnerId"],
        ["BusinessUnitId"], ["BusinessUnitld"], ["Account"], ["Account", "AccountKey"],
        ["Document"], ["Document", "DocumentKey"], ["Document", "DocumentType"],
        ["Document", "DocumentStatus"], ["Document", "TaxNumber"], ["Document", "FileName"],
        ["Document", "ExpirationDate"], ["Document", "Reason"], ["Document", "PendingReason"],
        ["Document", "Message"], ["Signer"], ["MessageClassification"], ["Message"],
        ["AccountsKey"], ["AccountsKey", 0], ["CloseAccountInformationStatus"], ["Reason"],
    ],
    "celcoin": [
        ["entity"], ["status"], ["createTimestamp"], ["createTimeStamp"], ["webhookId"],
        ["body"], ["body", "proposalId"], ["body", "onboardingId"], ["body", "clientCode"],
        ["body", "documentNumber"], ["body", "proposalType"], ["body", "files"],
        ["body", "files", 0], ["body", "files", 0, "type"], ["body", "files", 0, "url"],
        ["body", "files", 0, "expirationTime"], ["body", "url"], ["body", "type"],
        ["body", "account"], ["body", "account", "branch"], ["body", "account", "account"],
        ["body", "account", "name"], ["body", "account", "documentNumber"],
        ["body", "account", "ispb"], ["body", "reason"], ["body", "message"],
    ],
}

WEIRD_STRINGS = [
    "", " ", "null", "NULL", "true", "0", "-1", "2", "1e3", "NaN", "Infinity", "[]", "{}",
    "'; DROP TABLE onboarding.account; --", "\"", "\\", "$$", "$fz$", "\\u0000", "%s%n%x",
    "é", "ATİVO", "straße", "ﬃ", "\u202eevil", "\u200b", "😀" * 10, "a\tb\nc\r", "\x01\x1f",
    "<script>alert(1)</script>", "../../etc/passwd", "x" * 300, "9" * 40,
]
WEIRD_TIMES = [
    "2025-13-45 25:61:61", "2025-02-30T10:00:00", "0001-01-01T00:00:00", "0000-00-00T00:00:00",
    "9999-12-31T23:59:59.9999999+14:00", "294277-01-01T00:00:00", "1-1-1", "infinity",
    "-infinity", "now", "today", "epoch", "allballs", "J2451187", "2025-06-01", "10:00:00",
    "2025-06-01T10:00:00+99:99", "2025-06-01T10:00:00.99999999999999999999Z",
    "2025-06-01T10:00:00.9999995", "2025-06-01T10:00:00 America/Sao_Paulo",
    "2025-06-01T10:00:00-03", "2025-06-01T10:00:00Zjunk", "2025-06-01 10:00", "", "   ",
    "2025/06/01 10:00:00", "1700000000",
]
WEIRD_TAXIDS = [
    "000.000.000-00", "111.111.111-11", "00000000000000", "615.120.612-64", "61512061263",
    "12.ABC.345/01DE-35", "12abc34501de35", "12.ABC.345/01DE-36", "1", "0" * 200,
    "615.120.612-63" * 3, "ÀÀÀ.ÀÀÀ.ÀÀÀ-ÀÀ", "PF-1", "--..//",
]
WEIRD_NUMBERS = [
    0, -1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 16, 99, 255, 256, 65536, 2 ** 31, -2 ** 31 - 1,
    2 ** 63, -2 ** 63 - 1, 2 ** 64, 10 ** 30, 2.5, -0.0, 1e-300, 1.7976931348623157e308, 4e-320,
]


def hostile_value(rng, path):
    """A value of the wrong type (or of the right type and wrong content)."""
    pick = rng.randrange(12)
    if pick == 0:
        return None
    if pick == 1:
        return rng.choice([True, False])
    if pick == 2:
        return rng.choice(WEIRD_NUMBERS)
    if pick == 3:
        return str(rng.choice(WEIRD_NUMBERS))
    if pick == 4:
        return rng.choice(WEIRD_STRINGS)
    if pick == 5:
        return rng.choice([{}, {"a": 1}, {"status": "ATIVO"}, {"": None}])
    if pick == 6:
        return rng.choice([[], [1, 2], ["x"], [None], [{"type": "SELFIE"}], [[[]]]])
    if pick == 7:
        return rng.choice(WEIRD_TIMES)
    if pick == 8:
        return rng.choice(WEIRD_TAXIDS)
    if pick == 9:
        return rng.choice(["UpdateAccount", "UpdatePersonDocument", "UpdateCloseAccount",
                           "onboarding-file", "account-status", "account", "ATIVO", "APPROVED",
                           "REPROVED", "account_opened", "pending_kyc_analysis"])
    if pick == 10:
        return {"deep": nested(rng.randrange(1, 60), "x")}
    return rng.choice(["", 0, [], {}])


def nested(depth, leaf):
    v = leaf
    for i in range(depth):
        v = [v] if i % 2 else {"n": v}
    return v


def paths_of(value, prefix=()):
    """Every path of a JSON value (objects and arrays), leaves included."""
    out = []
    if isinstance(value, dict):
        for k, v in value.items():
            out.append(list(prefix) + [k])
            out.extend(paths_of(v, prefix + (k,)))
    elif isinstance(value, list):
        for i, v in enumerate(value[:3]):
            out.append(list(prefix) + [i])
            out.extend(paths_of(v, prefix + (i,)))
    return out


def set_path(body, path, value, delete=False):
    """Set (or delete) body at path, creating the containers on the way."""
    node = body
    for step, nxt in zip(path, path[1:]):
        if isinstance(node, dict):
            if not isinstance(node.get(step), (dict, list)):
                node[step] = [] if isinstance(nxt, int) else {}
            node = node[step]
        elif isinstance(node, list):
            if not node or not isinstance(step, int):
                return
            node = node[min(step, len(node) - 1)]
        else:
            return
        if isinstance(nxt, int) and not isinstance(node, list):
            return
        if isinstance(nxt, str) and not isinstance(node, dict):
            return
    last = path[-1]
    if isinstance(node, dict) and isinstance(last, str):
        if delete:
            node.pop(last, None)
        else:
            node[last] = value
    elif isinstance(node, list) and isinstance(last, int):
        if not node:
            node.append(value)
        elif delete:
            del node[min(last, len(node) - 1)]
        else:
            node[min(last, len(node) - 1)] = value


def provider_of(body):
    if not isinstance(body, dict):
        return None
    if "webhook_type" in body:
        return "qitech"
    if "Method" in body:
        return "fitbank"
    if "entity" in body:
        return "celcoin"
    return None


def dumps(value):
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


class Generator:
    def __init__(self, fixtures_dir, rng):
        self.rng = rng
        self.templates = []   # parsed fixture objects
        self.texts = []       # every fixture file's text, the bad ones too
        for root, _, files in sorted(os.walk(fixtures_dir)):
            for name in sorted(files):
                if not name.endswith(".json"):
                    continue
                with open(os.path.join(root, name), encoding="utf-8") as f:
                    text = f.read()
                self.texts.append(text)
                try:
                    body = json.loads(text)
                except ValueError:
                    continue
                if isinstance(body, dict) and provider_of(body):
                    self.templates.append(body)
        if not self.templates:
            sys.exit("no fixture templates in " + fixtures_dir)

    def template(self):
        return json.loads(dumps(self.rng.choice(self.templates)))

    # Each kind returns (text, jsonb_can_hold_it).

    def k_types(self):
        body = self.template()
        prov = provider_of(body)
        candidates = READ_FIELDS[prov] + paths_of(body)
        for _ in range(self.rng.randrange(1, 4)):
            path = self.rng.choice(candidates)
            if self.rng.random() < 0.15:
                set_path(body, path, None, delete=True)
            else:
                set_path(body, path, hostile_value(self.rng, path))
        return dumps(body), True

    def k_every_field(self):
        # every field the pipeline reads, wrong at once
        body = self.template()
        for path in READ_FIELDS[provider_of(body)]:
            if self.rng.random() < 0.6:
                set_path(body, path, hostile_value(self.rng, path))
        return dumps(body), True

    def k_times(self):
        body = self.template()
        for field in ("event_datetime", "SendDate", "createTimestamp", "createTimeStamp"):
            if field in body:
                body[field] = self.rng.choice(WEIRD_TIMES + [None, 20250601, {"t": 1}])
        return dumps(body), True

    def k_taxids(self):
        body = self.template()
        paths = [p for p in paths_of(body) if str(p[-1]) in
                 ("TaxNumber", "document_number", "documentNumber", "AccountKey", "proposalId")]
        for path in paths or [["TaxNumber"]]:
            set_path(body, path, self.rng.choice(WEIRD_TAXIDS + [61512061263, 0]))
        return dumps(body), True

    def k_unknown(self):
        r = self.rng.randrange(8)
        if r == 0:
            body = self.template()
            for f in ("webhook_type", "Method", "entity"):
                if f in body:
                    body[f] = self.rng.choice(["account_request.deleted", "UpdateNothing", "onboarding-x",
                                               "", "ACCOUNT", "updateaccount", "Account-Status"])
        elif r == 1:
            body = self.template()
            for f in ("webhook_type", "Method", "entity"):
                body.pop(f, None)
        elif r == 2:
            body = {"provider": self.rng.choice(["stark", "bs2", "dock", "swap"]),
                    "event": "account.created", "id": self.rng.randrange(10 ** 6)}
        elif r == 3:
            body = self.rng.choice([None, True, False, 0, -1.5, "UpdateAccount", "", [], {}])
        elif r == 4:
            body = [self.template() for _ in range(self.rng.randrange(0, 4))]
        elif r == 5:
            # a body that looks like two providers at once
            body = self.template()
            body.update({"webhook_type": "account", "Method": "UpdateAccount",
                         "entity": "account-status", "body": {"onboardingId": "x"}})
        elif r == 6:
            body = {"webhook_type": "account", "key": "k", "status": "account_opened",
                    "extra": {str(i): i for i in range(200)}}
        else:
            body = self.template()
            body.update({"unexpected_" + str(i): hostile_value(self.rng, []) for i in range(5)})
        return dumps(body), True

    def incompressible(self, n):
        return "".join(self.rng.choices("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", k=n))

    def k_huge(self):
        size = MB // 2 + self.rng.randrange(MB // 2)
        if self.rng.random() < 0.5:
            big = self.incompressible(size)
        else:
            big = self.rng.choice(["x", "9", "é", "\"", "\\"]) * size
        body = self.template()
        where = self.rng.choice(["value", "value", "name", "many"])
        if where == "value":
            path = self.rng.choice(READ_FIELDS[provider_of(body)])
            set_path(body, path, big)
        elif where == "name":
            body[big[:MB // 4]] = 1
        else:
            body["many"] = ["x" * 1000] * 1000
        return dumps(body), True

    def k_long_keys(self):
        # keys, statuses and event names of a few kilobytes that do not compress
        body = self.template()
        keys = [p for p in READ_FIELDS[provider_of(body)] if str(p[-1]) in
                ("key", "account_request_key", "AccountKey", "DocumentKey", "TaxNumber", "proposalId",
                 "onboardingId", "type", "status", "Method", "entity", "webhook_type", "DocumentType")]
        set_path(body, self.rng.choice(keys), self.incompressible(self.rng.choice([2000, 2700, 3000, 9000])))
        return dumps(body), True

    # 2-, 3- and 4-byte UTF-8 characters; ASCII filler that no taxpayer
    # normalisation removes (no blanks, dots, slashes or dashes)
    MB_CHARS = {2: "éçãõñßΩжאع", 3: "€中語ศḁﬃ가ア", 4: "😀𝄞🎉𠜎𝒳🇧"}
    FILLER = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

    def mb_text(self, at_least, marks, widths=(1, 2, 3, 4)):
        """At least at_least bytes of UTF-8 such that every byte offset in
        marks (relative to the start of the text) falls inside a multibyte
        character, never on its first byte."""
        marks = sorted(m for m in marks if m > 0)
        out, pos = [], 0
        while pos < at_least or (marks and marks[0] >= pos):
            while marks and marks[0] < pos:
                marks.pop(0)
            d = marks[0] - pos if marks else None
            choices = [w for w in widths if d is None or pos + w != marks[0]]
            covering = [w for w in choices if w > 1 and d is not None and 0 < d < w]
            w = self.rng.choice(covering or choices)
            out.append(self.rng.choice(self.FILLER) if w == 1 else self.rng.choice(self.MB_CHARS[w]))
            pos += w
        text = "".join(out)
        raw = text.encode("utf-8")
        for m in marks:
            assert m >= len(raw) or (raw[m] & 0xC0) == 0x80, (m, raw[:m + 4])
        return text

    def mb_key(self, prefix_bytes=0):
        """A key part that follows prefix_bytes bytes of the key: over 1024
        bytes in all, or (now and then) over 40 bytes within the limit."""
        widths = self.rng.choice([(1, 2, 3, 4), (2, 3, 4), (1, 2), (1, 3), (1, 4), (2,), (3,), (4,)])
        if 1 not in widths and len(widths) == 1:
            widths = (1,) + widths   # a single width needs filler to land on the marks
        if self.rng.random() < 0.15:
            size = self.rng.randrange(41, 1000) - prefix_bytes
            return self.mb_text(max(size, 41 - prefix_bytes), [40 - prefix_bytes], widths)
        size = self.rng.choice([1025, 1030, 1100, 1500, 3000]) - prefix_bytes
        return self.mb_text(size, [40 - prefix_bytes, 1024 - prefix_bytes], widths)

    def mb_template(self, pred):
        pool = [t for t in self.templates if pred(t) and
                (provider_of(t) != "celcoin" or isinstance(t.get("body"), dict))]
        return json.loads(dumps(self.rng.choice(pool)))

    def k_mb_keys(self):
        """An over-long (or just long) multibyte key, direct or derived, for
        every provider and every way a key is made."""
        r = self.rng.randrange(13)
        if r == 0:      # QI Tech key
            body = self.mb_template(lambda t: provider_of(t) == "qitech")
            body["key"] = self.mb_key()
        elif r == 1:    # QI Tech key only in data
            body = self.mb_template(lambda t: provider_of(t) == "qitech")
            body.pop("key", None)
            set_path(body, ["data", "account_request_key"], self.mb_key())
        elif r == 2:    # Fitbank account, closure: AccountKey
            body = self.mb_template(lambda t: t.get("Method") in ("UpdateAccount", "UpdateCloseAccount"))
            body["AccountKey"] = self.mb_key()
        elif r == 3:    # Fitbank account keyed by its taxpayer
            body = self.mb_template(lambda t: t.get("Method") == "UpdateAccount")
            body["AccountKey"] = ""
            body["TaxNumber"] = self.mb_key()
        elif r == 4:    # Fitbank proposal: the taxpayer
            body = self.mb_template(lambda t: t.get("Method") == "UpdatePersonCondition")
            body["TaxNumber"] = self.mb_key()
        elif r == 5:    # Fitbank document: DocumentKey
            body = self.mb_template(lambda t: isinstance(t.get("Document"), dict))
            body["Document"]["DocumentKey"] = self.mb_key()
        elif r == 6:    # Fitbank document, no DocumentKey: <taxpayer>:<DocumentType>
            body = self.mb_template(lambda t: isinstance(t.get("Document"), dict))
            body["Document"]["DocumentKey"] = ""
            body["Document"]["TaxNumber"] = self.mb_key()
            body["Document"].setdefault("DocumentType", 1)
        elif r == 7:    # ... a short taxpayer and a long DocumentType
            body = self.mb_template(lambda t: isinstance(t.get("Document"), dict))
            body["Document"]["DocumentKey"] = ""
            body["Document"]["TaxNumber"] = tax = self.rng.choice(["61512061263", "123", "x"])
            body["Document"]["DocumentType"] = self.mb_key(len(tax) + 1)
        elif r == 8:    # Celcoin proposal and checks: proposalId
            body = self.mb_template(lambda t: provider_of(t) == "celcoin" and
                                    str(t.get("entity", "")).startswith("onboarding-") and
                                    t.get("entity") != "onboarding-create")
            body["body"]["proposalId"] = self.mb_key()
        elif r == 9:    # Celcoin account: onboardingId
            body = self.mb_template(lambda t: t.get("entity") in ("onboarding-create", "account-status"))
            body["body"]["onboardingId"] = self.mb_key()
            if "proposalId" in body["body"] and self.rng.random() < 0.5:
                body["body"]["proposalId"] = body["body"]["onboardingId"]
        elif r == 10:   # Celcoin file: a long proposalId, every document key long with it
            body = self.mb_template(lambda t: t.get("entity") == "onboarding-file")
            body["body"]["proposalId"] = self.mb_key()
        elif r == 11:   # Celcoin file: <proposalId>:<type> over-long through the type
            body = self.mb_template(lambda t: t.get("entity") == "onboarding-file" and
                                    isinstance(t["body"].get("files"), list) and t["body"]["files"])
            pid = str(body["body"].get("proposalId"))
            body["body"]["files"][self.rng.randrange(len(body["body"]["files"]))]["type"] = \
                self.mb_key(len(pid.encode("utf-8")) + 1)
        else:           # Celcoin single-url file with a long type
            body = self.mb_template(lambda t: t.get("entity") == "onboarding-file")
            body["body"].pop("files", None)
            body["body"].setdefault("url", "https://example.com/f.pdf")
            pid = str(body["body"].get("proposalId"))
            body["body"]["type"] = self.mb_key(len(pid.encode("utf-8")) + 1)
        if self.rng.random() < 0.3:
            # a multibyte value in a field that is not a key, too
            for f in ("Message", "rejection_reason", "Reason"):
                if f in body:
                    body[f] = self.mb_text(self.rng.randrange(30, 300), [40])
        return dumps(body), True

    def k_deep(self):
        depth = self.rng.choice([998, 999, 1000, 1001, 1002, 1500, 2500, 100000])
        body = self.template()
        text = dumps(body)
        field = self.rng.choice(["data", "body", "Document", "status", "key", "x"])
        inner = "[" * depth + "1" + "]" * depth if self.rng.random() < 0.5 \
            else '{"a":' * depth + "1" + "}" * depth
        text = text[:-1] + ', "' + field + '": ' + inner + "}"
        # jsonb itself holds a few thousand levels; deeper only as text
        return text, depth <= 2500

    def k_numbers(self):
        body = self.template()
        token = self.rng.choice([
            "1e1000", "1e-1000", "1e1001", "-1e1001", "1e-1001", "9e999999999", "1E+100000",
            "0.000000000000000000000000000001", "123456789012345678901234567890", "-0", "-0.0e-0",
            "1" * 1000, "1" * 131072, "1" * 140000, "0." + "1" * 16383, "0." + "1" * 17000,
            "1e+0000000000000000000003", "2." + "0" * 5000 + "1",
        ])
        fields = [p[-1] for p in READ_FIELDS[provider_of(body)] if len(p) == 1]
        text = dumps(body)[:-1] + ', "' + self.rng.choice(fields) + '": ' + token + "}"
        # what numeric (and so jsonb) can hold: let PostgreSQL decide, as text
        return text, False

    def k_truncated(self):
        text = self.rng.choice([dumps(self.template()), self.rng.choice(self.texts)])
        return text[:self.rng.randrange(len(text))], False

    def k_escapes(self):
        text = dumps(self.template())
        bad = self.rng.choice(["\\x41", "\\u12G4", "\\ud800", "\\udc00\\ud800", "\\u0000",
                               "\\'", "\\ ", "\\u", "\\uD83D", "\\U0001F600", "\\0", "\\a",
                               "\\u0000\\u0000", "abc\\u0000def"])
        quotes = [i for i, c in enumerate(text) if c == '"']
        at = self.rng.choice(quotes[1::2]) if len(quotes) > 1 else 1
        return text[:at] + bad + text[at:], False

    def k_syntax(self):
        t = dumps(self.template())
        r = self.rng.randrange(16)
        if r == 0:
            return "<html><body><h1>502 Bad Gateway</h1></body></html>", False
        if r == 1:
            return t.replace('"', "'"), False
        if r == 2:
            return t[:-1] + ', "n": NaN}', False
        if r == 3:
            return t[:-1] + ', "n": Infinity, "m": -Infinity}', False
        if r == 4:
            return "// comment\n" + t, False
        if r == 5:
            return t[:-1] + ",}", False
        if r == 6:
            return t.replace(": ", ":\x01", 1), False
        if r == 7:
            return "\ufeff" + t, False
        if r == 8:
            return self.rng.choice(["", " ", "\n", "\t\r\n ", "{", "}", "[", "\"", "nul", "tru"]), False
        if r == 9:
            return t + t, False
        if r == 10:
            return t.replace('"Method": "', '"Method": ', 1).replace('", ', ", ", 1), False
        if r == 11:
            # the known defect, in places it is not known
            return t.replace(': "', ": ", self.rng.randrange(1, 4)), False
        if r == 12:
            return t.replace('{"', '{', 1).replace('": ', ': ', 1), False
        if r == 13:
            return "".join(self.rng.choice(' {}[]":,\\tfnrue0123456789.-eE+') for _ in
                           range(self.rng.randrange(1, 200))), False
        if r == 14:
            return "".join(chr(self.rng.choice([self.rng.randrange(1, 0x7f),
                                                self.rng.randrange(0xa0, 0xd7ff),
                                                self.rng.randrange(0xe000, 0x10ffff)]))
                           for _ in range(self.rng.randrange(1, 300))), False
        # valid JSON laid out oddly: only the whitespace differs
        return "\r\n " + json.dumps(json.loads(t), ensure_ascii=False, indent="\t",
                                     separators=("\n ,", " :\t")) + "\n\n", True

    def k_fixture(self):
        # a real fixture as sent, byte for byte (bad ones included)
        text = self.rng.choice(self.texts)
        try:
            json.loads(text)
            return text, True
        except ValueError:
            return text, False


KINDS = [  # (kind, weight)
    ("types", 30), ("every_field", 8), ("times", 6), ("taxids", 5), ("unknown", 8),
    ("long_keys", 2), ("mb_keys", 6), ("deep", 3), ("numbers", 4), ("truncated", 12), ("escapes", 8),
    ("syntax", 12), ("fixture", 4),
]


def literal(text, rng):
    """A dollar-quoted SQL literal whose tag cannot occur in the text."""
    tag = "$fz$"
    while (text + tag).find(tag) != len(text):
        tag = "$fz%d$" % rng.randrange(10 ** 9)
    return tag + text + tag


def nesting(text):
    """Deepest nesting of objects and arrays outside strings."""
    depth = deepest = 0
    in_string = escaped = False
    for c in text:
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif c in "]}":
            depth -= 1
    return deepest


JSONB_DOORS = ["ingest", "insert_payload", "ingest_text", "insert_raw", "insert_both"]
TEXT_DOORS = ["ingest_text", "insert_raw"]
RAW_MAX_DEPTH = 1000    # src/parse.c refuses deeper nesting in text bodies


def pick_door(rng, jsonb_ok):
    r = rng.random()
    if jsonb_ok:
        return ("ingest" if r < 0.30 else "insert_payload" if r < 0.55 else
                "ingest_text" if r < 0.80 else "insert_raw" if r < 0.95 else "insert_both")
    return "ingest_text" if r < 0.5 else "insert_raw"


def delivery_sql(rng, n, kind, text, jsonb_ok, door, provider, explain):
    """The statements of one delivery: explain() first when asked, then the
    delivery, whose returned outcome is kept in public.fz_got."""
    headers = {"fuzz": n, "kind": kind, "door": door}
    if door in ("ingest_text", "insert_raw"):
        headers["md5"] = hashlib.md5(text.encode("utf-8")).hexdigest()
    lit = literal(text, rng)
    if door == "insert_both":
        # the caller's parsed body and its text, which may disagree
        wrong = text[:rng.randrange(len(text) + 1)]
        headers["md5"] = hashlib.md5(wrong.encode("utf-8")).hexdigest()
    h = "'%s'" % dumps(headers)
    if door == "ingest":
        sql = ("INSERT INTO public.fz_got SELECT %d, outcome FROM onboarding.ingest(%s::jsonb, %s, %s);"
               % (n, lit, provider, h))
    elif door == "insert_payload":
        sql = ("WITH d AS (INSERT INTO onboarding.inbox (payload, provider, headers) VALUES (%s::jsonb, %s, %s)"
               " RETURNING outcome) INSERT INTO public.fz_got SELECT %d, outcome FROM d;"
               % (lit, provider, h, n))
    elif door == "ingest_text":
        sql = ("INSERT INTO public.fz_got SELECT %d, outcome FROM onboarding.ingest_text(%s, %s, %s);"
               % (n, lit, provider, h))
    elif door == "insert_raw":
        sql = ("WITH d AS (INSERT INTO onboarding.inbox (raw, provider, headers) VALUES (%s, %s, %s)"
               " RETURNING outcome) INSERT INTO public.fz_got SELECT %d, outcome FROM d;"
               % (lit, provider, h, n))
    else:
        sql = ("WITH d AS (INSERT INTO onboarding.inbox (payload, raw, headers) VALUES (%s::jsonb, %s, %s)"
               " RETURNING outcome) INSERT INTO public.fz_got SELECT %d, outcome FROM d;"
               % (lit, literal(wrong, rng), h, n))
    if not explain:
        return sql + "\n"
    # provider: insert_both gives none, whatever was drawn
    return ("BEGIN;\nINSERT INTO public.fz_explain SELECT %d, onboarding.explain(%s::jsonb, %s)->>'outcome';\n"
            "%s\nCOMMIT;\n" % (n, lit, "NULL" if door == "insert_both" else provider, sql))


def main():
    fixtures_dir, count, seed, prefix = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    batches = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    rng = random.Random(seed)
    gen = Generator(fixtures_dir, rng)
    # every 8th delivery re-sends an earlier body (after each 7 fresh ones)
    fresh = count - count // 8
    # huge bodies are a fixed number, not a share: 1 MB each
    plan = ["huge"] * 24
    names, weights = zip(*KINDS)
    plan += rng.choices(names, weights, k=fresh - len(plan))
    rng.shuffle(plan)
    order = []
    for i, kind in enumerate(plan, 1):
        order.append(kind)
        if i % 7 == 0 and len(order) < count:
            order.append("resend")
    kinds, doors = collections.Counter(), collections.Counter()
    explained = 0
    sent = []           # (text, jsonb_ok, kind, door) of every delivery so far
    long_ones = []      # indexes into sent of the (multibyte) long-key bodies
    per_batch = -(-len(order) // batches)
    outs = [open("%s.%d.sql" % (prefix, b + 1), "w", encoding="utf-8", newline="")
            for b in range(batches)]
    try:
        for n, kind in enumerate(order, 1):
            out = outs[(n - 1) // per_batch]
            if kind == "resend":
                if long_ones and rng.random() < 0.4:
                    text, jsonb_ok, orig_kind, orig_door = sent[rng.choice(long_ones)]
                else:
                    text, jsonb_ok, orig_kind, orig_door = rng.choice(sent)
                # the same door, or another one that can carry the body
                door = orig_door if rng.random() < 0.5 else pick_door(rng, jsonb_ok)
            else:
                text, jsonb_ok = getattr(gen, "k_" + kind)()
                text = text.replace("\x00", "")   # a text value cannot hold a NUL byte
                orig_kind = kind
                door = pick_door(rng, jsonb_ok)
            provider = "NULL"
            if rng.random() < 0.1:
                provider = "'%s'" % rng.choice(["qitech", "fitbank", "celcoin"])
            explain = jsonb_ok and not (orig_kind == "deep" and door in TEXT_DOORS
                                        and nesting(text) > RAW_MAX_DEPTH)
            out.write(delivery_sql(rng, n, kind, text, jsonb_ok, door, provider, explain))
            if orig_kind in ("mb_keys", "long_keys") and kind != "resend":
                long_ones.append(len(sent))
            sent.append((text, jsonb_ok, orig_kind, door))
            explained += explain
            kinds[kind] += 1
            doors[door] += 1
    finally:
        for out in outs:
            out.close()
    for k, v in sorted(kinds.items()):
        print("kind_%s %d" % (k, v))
    for k, v in sorted(doors.items()):
        print("door_%s %d" % (k, v))
    print("explained %d" % explained)
    print("batches %d" % batches)
    print("total %d" % len(order))


if __name__ == "__main__":
    main()
