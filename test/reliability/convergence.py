#!/usr/bin/env python3
"""Realistic provider flows in many arrival orders, for test/scripts/convergence.sh.

    convergence.py plan FIXTURES_DIR OUT_DIR SEED ORDERS
        writes, for every flow, OUT_DIR/<flow>.sql (every run of the flow: one
        INSERT per delivery, each run on keys of its own) and
        OUT_DIR/<flow>.json (the runs: orders, tokens, labels); prints one line
        per flow: "<flow> <runs> <deliveries> <all|sampled> <orders possible>"
    convergence.py copy OUT_DIR FLOW SEED < inbox.jsonl > copy.sql
        the inbox of a flow's database (one JSON object per row, in id order)
        delivered again into another database: the bodies of (at most 100 of)
        its runs, each run's in the arrival order of ANOTHER run of the same
        flow (a different admissible order), the runs interleaved at random
    convergence.py check OUT_DIR FLOW
        compares what the runs derived (OUT_DIR/<flow>.<what>.<db> dumps, see
        convergence.sh) and prints one summary line; exit status 1 when the
        runs do not agree

Standard library only.

SPEC SS1.3 and SS6: each entity's state is the fold of its deliveries in event
order (provider time; equal times by the transition graph, then the status
enum, then a stable function of the body; never by arrival).  A delivery
without a time has no event order of its own: it takes its place right after
the latest event among the deliveries of its group (same provider and
subject) that arrived before it.  So the property is stated for the orders
that keep every time-less delivery at the place the flow gives it:

  for a time-less delivery D of group G, let A be the timed delivery of G
  with the latest time among those that precede D in the flow (its anchor);
  an order is admissible when A arrives before D, D arrives before every
  timed delivery of G later than A, and D keeps its place among the
  time-less deliveries of G.  Timed deliveries of G earlier than A, and
  every delivery of another group, may arrive anywhere.  (No timed
  delivery of G may share A's time: the generator refuses such a flow.)

Flows made only of timed deliveries take every permutation.  Every flow is
run in every admissible order when there are at most 720 of them, else in
ORDERS orders drawn uniformly from the admissible ones; the flow's own order
(the real one) is always run 0.

What is compared across runs, after the run's tokens (key suffix, CPF) are
put back to placeholders: the state rows (every column but last_inbox_id,
last_seen_id and last_received_at, which are arrival ids and times), the
history (every column but id and inbox_id, rows of one entity in id order),
and the outcomes per body (a multiset per distinct body; stale counts as
applied: it means "applied at its place, arrived late").
"""
import collections
import datetime
import difflib
import hashlib
import itertools
import json
import math
import os
import random
import re
import sys

UTC = datetime.timezone.utc
SAO_PAULO = datetime.timezone(datetime.timedelta(hours=-3))  # no summer time since 2019
ALL_ORDERS_MAX = 720
COPY_RUNS = 100      # runs of a flow put in its shuffled copy


# --- taxpayer numbers -------------------------------------------------------

def cpf(nine):
    """A valid CPF from 9 digits (a string)."""
    d = [int(c) for c in nine]
    for n in (10, 11):
        s = sum(x * w for x, w in zip(d, range(n, 1, -1)))
        r = s % 11
        d.append(0 if r < 2 else 11 - r)
    return "".join(map(str, d))


def masked(c):
    return "%s.%s.%s-%s" % (c[:3], c[3:6], c[6:9], c[9:])


def run_cpf(flow_no, run):
    # 9 digits: 7, the flow, the run; never a repeated-digit CPF, never a cast CPF
    return cpf("7%02d%06d" % (flow_no, run))


# --- times ------------------------------------------------------------------

def utc(s):
    """'2025-01-02 12:00:00[.ffffff]' (UTC) -> aware datetime"""
    fmt = "%Y-%m-%d %H:%M:%S.%f" if "." in s else "%Y-%m-%d %H:%M:%S"
    return datetime.datetime.strptime(s, fmt).replace(tzinfo=UTC)


def fmt_time(t, style):
    """How providers write t: Z, -03:00 offset, naive Sao Paulo time (T or blank), 7 digits."""
    local = t.astimezone(SAO_PAULO).replace(tzinfo=None)
    frac = ".%06d" % t.microsecond if t.microsecond else ""
    if style == "z":
        return t.replace(tzinfo=None).strftime("%Y-%m-%dT%H:%M:%S") + frac + "Z"
    if style == "offset":
        return local.strftime("%Y-%m-%dT%H:%M:%S") + frac + "-03:00"
    if style == "offset7":       # .NET: seven fraction digits and an offset
        return local.strftime("%Y-%m-%dT%H:%M:%S") + ".%07d" % (t.microsecond * 10) + "-03:00"
    if style == "naive":
        return local.strftime("%Y-%m-%dT%H:%M:%S") + frac
    if style == "naive_blank":
        return local.strftime("%Y-%m-%d %H:%M:%S") + frac
    raise ValueError(style)


SENTINEL = "0001-01-01T00:00:00"


# --- bodies, shaped like the fixtures ----------------------------------------

def dumps(obj):
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def qi(key, status, when, webhook_type="account_request.status_change", info=None,
       owner=None, reason=None, data_status=True):
    data = {"account_info": info or {"account_digit": "3", "account_branch": "0001",
                                     "account_number": "1638634"}}
    if owner:
        data["account_owner"] = owner
    if webhook_type == "account_request.status_change":
        data["account_request_key"] = key
        if data_status:
            data["status"] = status
    body = {"data": data, "event_datetime": when, "key": key, "status": status,
            "webhook_type": webhook_type}
    if reason is not None:
        body["rejection_reason"] = reason
    return dumps(body)


def fb_account(key, tax, cond, enabled, send, bank=("450", "0001", "71004581", "1"), spb=False,
               partner=860, unit=820):
    body = {"PartnerId": partner, "BusinessUnitId": unit, "TaxNumber": tax, "SendDate": send,
            "AccountConditionType": cond, "CreationDate": "2025-02-10T08:59:58.12",
            "AccountStatus": 1 if enabled else 0}
    if spb:
        body.update({"Bank": None, "BankBranch": None, "BankAccount": None, "BankAccountDigit": None,
                     "AccountKey": key,
                     "SpbAccount": dict(zip(("Bank", "BankBranch", "BankAccount", "BankAccountDigit"), bank))})
    else:
        body.update(dict(zip(("Bank", "BankBranch", "BankAccount", "BankAccountDigit"), bank)))
        body.update({"AccountKey": key, "SpbAccount": None})
    body["Method"] = "UpdateAccount"
    return dumps(body)


def fb_document(doc_key, tax, dtype, dstatus, file_name, description, send=None, account_key=None,
                reason="", message=""):
    account = None
    if account_key is not None:
        account = {"AccountStatus": 1, "AccountConditionType": 2, "TaxNumber": tax, "Bank": "450",
                   "BankBranch": "0001", "BankAccount": "71006127", "BankAccountDigit": "7",
                   "AccountKey": account_key}
    body = {"Account": account,
            "Document": {"FileName": file_name, "Description": description,
                         "Extension": file_name[file_name.rfind("."):], "ExpirationDate": None,
                         "DocumentStatus": dstatus, "DocumentType": dtype, "DocumentKey": doc_key,
                         "Reason": reason, "TaxNumber": tax, "Message": message, "PendingReason": None},
            "Method": "UpdatePersonDocument", "BusinessUnitId": 820, "PartnerId": 860}
    if send is not None:
        body["SendDate"] = send
    return dumps(body)


def fb_person(tax, classification, message, accounts_key, send=None):
    body = {"TaxNumber": tax, "PartnerId": 860, "Message": message,
            "MessageClassification": classification, "AccountsKey": accounts_key,
            "Method": "UpdatePersonCondition", "BusinessUnitId": 820}
    if send is not None:
        body["SendDate"] = send
    return dumps(body)


def fb_close(key, status, message, send):
    return dumps({"CloseAccountInformationStatus": status, "Message": message, "Bank": "",
                  "BankAccount": "", "BankBranch": "", "BankAccountDigit": "", "AccountKey": key,
                  "Method": "UpdateCloseAccount", "BusinessUnitId": 820, "PartnerId": 860,
                  "SendDate": send})


def webhook_id(label):
    h = hashlib.md5(label.encode()).hexdigest()
    return "%s-%s-5%s-%s-%s" % (h[:8], h[8:12], h[13:16], h[16:20], h[20:32])


def cc(entity, when, status, body, label, ts_field="createTimestamp"):
    return dumps({"entity": entity, ts_field: when, "status": status, "body": body,
                  "webhookId": webhook_id(label)})


def cc_proposal_body(pid, client, doc, ptype):
    return {"proposalId": pid, "clientCode": client, "documentNumber": doc, "proposalType": ptype,
            "onboardingType": "BAAS"}


def cc_create(pid, client, when, status, account=None, label="create", error=None):
    body = {}
    if account:
        body["account"] = account
    body.update({"onboardingId": pid, "proposalId": pid, "clientCode": client})
    if error:
        body.update({"errorCode": error[0], "message": error[1]})
    body["createDate"] = when
    return cc("onboarding-create", when, status, body, label)


def cc_account_status(pid, client, account, doc, when, status, reason, label):
    return cc("account-status", when, status,
              {"account": account, "clientCode": client, "documentNumber": doc, "onboardingId": pid,
               "reason": reason}, label)


# --- the flows ---------------------------------------------------------------
#
# A flow is a list of deliveries in the order the provider meant (the real
# order): dict(label, group, t, text).  group: the delivery's subject (one
# group per entity key; a consequence shares its cause's subject).  t: the
# UTC event time (a datetime), or None for a body without one.  text: the
# body, with "{R}" where the run's key suffix goes and "{CPF}" / "{CPFM}"
# where the run's CPF goes (bare / masked).

def fixture(fixtures, path, replace):
    with open(os.path.join(fixtures, path), encoding="utf-8") as f:
        text = f.read()
    for old, new in replace:
        assert old in text, (path, old)
        text = text.replace(old, new)
    return text


def D(label, group, text, t=None, timeless=False):
    """t: the UTC event time, needed only in a group that has time-less deliveries."""
    return {"label": label, "group": group, "text": text, "timeless": timeless,
            "t": utc(t) if t is not None else None}


def flows(fixtures):
    F = collections.OrderedDict()

    # QI Tech: the two real samples sharing 2022-09-02 22:39:39 (in_analysis
    # and pending_data: both moves legal, so the enum orders them), a later
    # KYC event that carries the holder's name and tax id, then rejected (the
    # name and tax id must stay: non-status fields come from the latest
    # delivery in event order that carries them), and an exact re-send.
    k = "dc575950-dcce-48e1-99a6-5fb0ada63d86"
    rk = [(k, k + "{R}")]
    F["qitech_samples"] = [
        D("kyc@22:39:39", "a", fixture(fixtures, "qitech/account-request-pending-kyc-analysis.json", rk)),
        D("additional@22:39:39", "a", fixture(fixtures, "qitech/account-request-pending-additional-data.json", rk)),
        D("kyc+owner@+1d", "a", qi(k + "{R}", "pending_kyc_analysis", "2022-09-03 10:15:00",
                                         info={"account_digit": "3", "account_branch": "0001",
                                               "account_number": "1638634",
                                               "financial_institution_code": "329"},
                                         owner={"name": "VOVO LUCIA CONVENIENCIA LTDA",
                                                "document_number": "09080702000105"})),
        D("rejected@+3d", "a", qi(k + "{R}", "rejected", "2022-09-05T14:00:00",
                                        reason="Documentação da empresa inconsistente", data_status=False)),
        D("kyc@22:39:39(resend)", "a", fixture(fixtures, "qitech/account-request-pending-kyc-analysis.json", rk)),
    ]

    # QI Tech ties: kyc and additional data in the same second, two rejected
    # bodies in the same second with different reasons (the body orders
    # them), and a legacy account_opened after the rejection (illegal).
    k = "5e0c7d21-94ab-4f3e-8d16-b2a7c9e4f105"
    owner = {"name": "MERCADO SOL NASCENTE LTDA", "document_number": "06.456.788/0001-21"}
    F["qitech_ties"] = [
        D("bacen@10:00:00.5", "a", qi(k + "{R}", "pending_bacen_validation", "2025-04-02T10:00:00.5-03:00", owner=owner)),
        D("kyc@10:05", "a", qi(k + "{R}", "pending_kyc_analysis", "2025-04-02T10:05:00-03:00")),
        D("additional@10:05", "a", qi(k + "{R}", "pending_additional_data", "2025-04-02T10:05:00-03:00", data_status=False)),
        D("rejected-unsc@13:15:30", "a", qi(k + "{R}", "rejected", "2025-04-02T13:15:30-03:00", reason="UNSC")),
        D("rejected-bacen@13:15:30", "a", qi(k + "{R}", "rejected", "2025-04-02T13:15:30-03:00",
                                                   reason="Rejeitado devido ao Bacen Protege+")),
        D("opened@+1d(illegal)", "a", qi(k + "{R}", "account_opened", "2025-04-03T12:00:00Z", webhook_type="account",
                                               info={"account_key": "e2b7c4d1-58a9-4f36-9b0e-3d1c7a6f2e85",
                                                     "account_digit": "7", "account_branch": "0001",
                                                     "account_number": "4410275",
                                                     "financial_institution_code": "329"})),
    ]

    # QI Tech, a natural person: every time format (blank, T naive, fraction,
    # Z), key and status only under data, and a re-send.
    k = "3b9f6a52-7c1e-4d2a-9f0b-6e8d1c2a4b70"
    rk = [(k, k + "{R}")]
    F["qitech_pf"] = [
        D("bacen", "a", fixture(fixtures, "qitech/pf-01-pending-bacen-validation.json", rk)),
        D("kyc(data only)", "a", fixture(fixtures, "qitech/pf-02-pending-kyc-analysis-key-and-status-in-data-only.json", rk)),
        D("additional", "a", fixture(fixtures, "qitech/pf-03-pending-additional-data-fraction.json", rk)),
        D("opened(legacy)", "a", fixture(fixtures, "qitech/pf-04-account-opened-legacy-utc-z.json", rk)),
        D("kyc(resend)", "a", fixture(fixtures, "qitech/pf-02-pending-kyc-analysis-key-and-status-in-data-only.json", rk)),
    ]

    # Fitbank UpdateAccount with times in every form (.NET seven digits with
    # an offset, one rounding to the next second, naive), a limited and an
    # active in the same second (both moves legal: the enum orders them), a
    # bank from SpbAccount, and an exact re-send.
    k = "860590-254444-7100458-1{R}"
    tax = "249.521.222-04"
    F["fitbank_account"] = [
        D("created", "a", fb_account(k, tax, 0, False, "2025-02-10T09:00:01.4471230-03:00")),
        D("verified", "a", fb_account(k, "24952122204", 2, True, "2025-02-12T16:45:10.9999996-03:00")),
        D("limited", "a", fb_account(k, tax, 1, True, "2025-02-20T11:00:00")),
        D("blocked(spb)", "a", fb_account(k, tax, 3, True, "2025-03-01T08:30:00.1234565-03:00", spb=True)),
        D("limited@03-05", "a", fb_account(k, tax, 1, True, "2025-03-05T10:00:00")),
        D("verified@03-05", "a", fb_account(k, tax, 2, True, "2025-03-05T10:00:00",
                                                  bank=("450", "0001", "71004581", "1"))),
        D("limited(resend)", "a", fb_account(k, tax, 1, True, "2025-02-20T11:00:00")),
    ]

    # Fitbank UpdateAccount without AccountKey (keyed by the CPF), the first
    # with the .NET sentinel (no time: it arrives first), naive and offset
    # times, a re-send, and a last one with the sentinel again.
    def thiago(cond, send, enabled=True, bank=("450", "0001", "71102266", "8")):
        return fb_account("", "{CPFM}" if cond == 0 else "{CPF}", cond, enabled, send, bank=bank,
                          partner=85, unit=84)
    F["fitbank_account_sentinel"] = [
        D("created(sentinel)", "cpf", timeless=True, text=thiago(0, SENTINEL, bank=(None, None, None, None))),
        D("verified(naive)", "cpf", t="2025-06-02 17:03:27.51", text=thiago(2, "2025-06-02T14:03:27.51")),
        D("blocked", "cpf", t="2025-06-05 13:00:00", text=thiago(3, "2025-06-05T10:00:00-03:00")),
        D("blocked(resend)", "cpf", t="2025-06-05 13:00:00", text=thiago(3, "2025-06-05T10:00:00-03:00")),
        D("verified", "cpf", t="2025-06-06 10:00:00", text=thiago(2, "2025-06-06T07:00:00-03:00")),
        D("limited(sentinel)", "cpf", timeless=True, text=thiago(1, SENTINEL)),
    ]

    # Fitbank documents.  A: sent, validated, resubmitted, no times.  B:
    # validated, suspended, suspended again (an exact re-send: duplicate),
    # validated again (byte-identical to the first, but the document moved
    # on since: a new occurrence), no times.  C (no DocumentKey: keyed
    # <CPF>:14): awaiting validation and typified with times, validated
    # without one (its place: after typified), expired with a time.
    a = "4f8e2a1c-7b3d-4e9f-a6c5-0d1b2e3f4a51{R}"
    b = "6e3f1a8b-2c4d-4b7e-9f05-8a1d3c6e2b49{R}"
    acct = "860590-254444-7100612-7{R}"
    def doc_a(status):
        return fb_document(a, "24952122204", 0, status, "24952122204_10022025_RGFrente.jpeg", "Documento_Frente",
                           account_key="860590-254444-7100458-1{R}")
    def doc_b(status, reason=""):
        return fb_document(b, "64035116000149", 5, status, "64035116000149_05052025_ContratoSocial.pdf",
                           "Contrato_Social", account_key=acct, reason=reason)
    def doc_c(status, send=None):
        return fb_document("", "{CPF}", 14, status, "{CPF}_02062025_Selfie.jpeg", "Selfie", send=send,
                           account_key=None)
    F["fitbank_documents"] = [
        D("A:sent", "A", timeless=True, text=doc_a(4)),
        D("B:validated", "B", timeless=True, text=doc_b(1)),
        D("C:awaiting@t1", "C", t="2025-06-02 17:10:00", text=doc_c(0, "2025-06-02T14:10:00-03:00")),
        D("A:validated", "A", timeless=True, text=doc_a(1)),
        D("B:suspended", "B", timeless=True, text=doc_b(9, "Situação cadastral suspensa na Receita Federal")),
        D("C:typified@t2", "C", t="2025-06-02 17:12:30", text=doc_c(10, "2025-06-02T14:12:30")),
        D("C:validated", "C", timeless=True, text=doc_c(1)),
        D("B:suspended(resend)", "B", timeless=True, text=doc_b(9, "Situação cadastral suspensa na Receita Federal")),
        D("A:resubmitted", "A", timeless=True, text=doc_a(5)),
        D("B:validated(again)", "B", timeless=True, text=doc_b(1)),
        D("C:expired@t4", "C", t="2026-06-02 03:00:00", text=doc_c(3, "2026-06-02T00:00:00.0000000-03:00")),
    ]

    # Fitbank closure: the account is created and verified; a closure is
    # requested, disapproved, requested again (status 0), approved (which
    # closes the account), then UpdateAccount Terminated a minute later;
    # plus a re-send of the disapproval.  One group: the AccountKey.
    k = "860590-254444-7100612-7{R}"
    tax = "64.035.116/0001-49"
    bank = ("450", "0001", "71006127", "7")
    F["fitbank_closure"] = [
        D("account:created", "a", fb_account(k, tax, 0, False, "2025-03-01T09:00:00-03:00", bank=bank)),
        D("account:verified", "a", fb_account(k, tax, 2, True, "2025-03-02T09:00:00-03:00", bank=bank)),
        D("closure:created", "a", fb_close(k, 0, "Solicitação em análise", "2025-04-01T10:00:00-03:00")),
        D("closure:disapproved", "a", fb_close(k, 4, "Solicitação de cancelamento reprovada", "2025-04-02T10:00:00-03:00")),
        D("closure:created(again)", "a", fb_close(k, 0, "Nova solicitação em análise", "2025-04-10T10:00:00-03:00")),
        D("closure:approved", "a", fb_close(k, 5, "Conta cancelada com sucesso", "2025-04-11T09:30:00-03:00")),
        D("account:terminated", "a", fb_account(k, tax, 4, False, "2025-04-11T09:31:00-03:00", bank=bank)),
        D("closure:disapproved(resend)", "a", fb_close(k, 4, "Solicitação de cancelamento reprovada", "2025-04-02T10:00:00-03:00")),
    ]

    # Fitbank person condition without times (keyed by the CPF): divergent
    # data, rejected, the same divergent body again (a re-application: the
    # proposal moved on since, so a new occurrence), approved, and approved
    # re-sent at once (duplicate); meanwhile the account's own timed
    # UpdateAccount events, another group, in any order.
    msg0 = ("Prezado(a) Cliente, foi constatada uma divergência nos dados enviados para a abertura de conta. "
            "Solicitamos, por gentileza, que encaminhe novamente as informações com as correções necessárias.")
    msg1 = "Prezado(a) Cliente, após validações internas, não foi possível seguir com a abertura da conta."
    msg4 = "Cliente aprovado com sucesso"
    k = "860590-254444-7100733-2{R}"
    keys = [k]
    bank = ("450", "0001", "71007332", "2")
    F["fitbank_person"] = [
        D("P:divergent", "P", timeless=True, text=fb_person("{CPFM}", 0, msg0, keys)),
        D("A:created", "A", t="2025-07-01 12:00:00", text=fb_account(k, "{CPF}", 0, False, "2025-07-01T09:00:00-03:00", bank=bank)),
        D("P:rejected", "P", timeless=True, text=fb_person("{CPF}", 1, msg1, keys)),
        D("P:divergent(again)", "P", timeless=True, text=fb_person("{CPFM}", 0, msg0, keys)),
        D("A:verified", "A", t="2025-07-10 13:00:01", text=fb_account(k, "{CPF}", 2, True, "2025-07-10T10:00:01", bank=bank)),
        D("P:approved", "P", timeless=True, text=fb_person("{CPF}", 4, msg4, keys)),
        D("P:approved(resend)", "P", timeless=True, text=fb_person("{CPF}", 4, msg4, keys)),
        D("A:limited", "A", t="2025-07-15 13:00:00", text=fb_account(k, "{CPF}", 1, True, "2025-07-15T10:00:00-03:00", bank=bank)),
    ]

    # Celcoin, flow option 1 (background check first), the fixtures' story:
    # proposal, background check, proposal pending after the check started
    # (in_analysis -> pending), documentscopy, files, approval, account
    # created (the proposal moves to account_created and gets the account
    # key), RESOURCE_CREATED, a judicial block and unblock; plus a re-send.
    pid = "7d2f4a90-3c1b-4e8a-b5f6-19e0c2d4a871"
    rp = [(pid, pid + "{R}")]
    names = ["flow1-01-onboarding-proposal-created", "flow1-02-onboarding-backgroundcheck-created",
             "flow1-03-onboarding-proposal-pending", "flow1-04-onboarding-backgroundcheck-pending-naive-7-digits",
             "flow1-05-onboarding-backgroundcheck-processing", "flow1-06-onboarding-backgroundcheck-approved",
             "flow1-07-onboarding-proposal-pending-documentscopy", "flow1-08-onboarding-documentscopy-created",
             "flow1-10-onboarding-documentscopy-processing", "flow1-11-onboarding-file-several-files",
             "flow1-13-onboarding-documentscopy-approved-half-microsecond", "flow1-14-onboarding-proposal-approved",
             "flow1-15-onboarding-create-confirmed-rounds-to-next-second",
             "flow1-16-onboarding-proposal-resource-created", "flow1-17-account-status-bloqueio-judicial",
             "flow1-18-account-status-desbloqueio-judicial"]
    F["celcoin_flow1"] = [D(n[6:8] + ":" + n[9:].replace("onboarding-", "")[:28], "p",
                            fixture(fixtures, "celcoin/%s.json" % n, rp)) for n in names]
    F["celcoin_flow1"].append(D("15:create(resend)", "p",
                                fixture(fixtures, "celcoin/%s.json" % names[12], rp)))

    # Celcoin, flow option 2 (documentscopy first; lower and mixed case;
    # one file as a single url), with the documentscopy approval and the
    # background check's PENDING in the same second, approval, account
    # created, then blocked and active again.
    pid = "a43e8c15-6b2d-4f70-9e1a-2c5b7d9f0e36"
    rp = [(pid, pid + "{R}")]
    names = ["flow2-01-onboarding-proposal-created", "flow2-02-onboarding-documentscopy-created-lower-case",
             "flow2-03-onboarding-documentscopy-processing-lower-case", "flow2-04-onboarding-file-single-url",
             "flow2-05-onboarding-documentscopy-approved-lower-case",
             "flow2-06-onboarding-backgroundcheck-pending-lower-case",
             "flow2-07-onboarding-backgroundcheck-processing-mixed-case",
             "flow2-08-onboarding-backgroundcheck-approved-mixed-case", "flow2-09-onboarding-proposal-approved"]
    fl = []
    for n in names:
        repl = list(rp)
        if n.startswith("flow2-06"):   # the same second as the documentscopy approval
            repl.append(("2026-06-02T12:20:05Z", "2026-06-02T12:20:00Z"))
        fl.append(D(n[6:8] + ":" + n[9:].replace("onboarding-", "")[:28], "p",
                    fixture(fixtures, "celcoin/%s.json" % n, repl)))
    acct = {"branch": "0001", "account": "300612345", "name": "HORIZONTE LOGISTICA LTDA",
            "documentNumber": "01769118000141", "ispb": "13935893"}
    fl += [
        D("10:create CONFIRMED", "p", cc_create(pid + "{R}", "CLI-000102", "2026-06-02T09:31:00.000", "CONFIRMED",
                                                      account=acct, label="f2-create")),
        D("11:proposal RESOURCE_CREATED", "p",
          cc("onboarding-proposal", "2026-06-02T12:31:01Z", "RESOURCE_CREATED",
             cc_proposal_body(pid + "{R}", "CLI-000102", "01769118000141", "PJ"), "f2-rc")),
        D("12:BLOQUEADO", "p", cc_account_status(pid + "{R}", "CLI-000102", "300612345", "01.769.118/0001-41",
                                                       "2026-07-01T08:00:00Z", "BLOQUEADO", "Bloqueio preventivo", "f2-b")),
        D("13:ATIVO", "p", cc_account_status(pid + "{R}", "CLI-000102", "300612345", "01.769.118/0001-41",
                                                   "2026-07-02T08:00:00Z", "ATIVO", "Desbloqueio", "f2-a")),
    ]
    F["celcoin_flow2"] = fl

    # Celcoin: the account creation fails, then the provider retries and it
    # is created (account failed -> active; proposal account_error ->
    # account_created).
    pid = "b58d2e71-4c9a-4f03-8e6b-7a1c3d5f9e20{R}"
    pb = cc_proposal_body(pid, "CLI-000201", "38108380715", "PF")
    acct = {"branch": "0001", "account": "300777001", "name": "Ana Beatriz Souza",
            "documentNumber": "38108380715", "ispb": "13935893"}
    F["celcoin_retry"] = [
        D("proposal CREATED", "p", cc("onboarding-proposal", "2026-06-03T12:00:00Z", "CREATED", pb, "r-c")),
        D("proposal APPROVED", "p", cc("onboarding-proposal", "2026-06-03T12:30:00Z", "APPROVED", pb, "r-a")),
        D("create ERROR", "p", cc_create(pid, "CLI-000201", "2026-06-03T09:31:00.000", "ERROR", label="r-e",
                                               error=("CA-0042", "Não foi possível criar a conta."))),
        D("proposal RESOURCE_ERROR", "p", cc("onboarding-proposal", "2026-06-03T12:31:01Z", "RESOURCE_ERROR", pb, "r-re")),
        D("create CONFIRMED", "p", cc_create(pid, "CLI-000201", "2026-06-03T10:40:00.000", "CONFIRMED",
                                                   account=acct, label="r-ok")),
        D("proposal RESOURCE_CREATED", "p", cc("onboarding-proposal", "2026-06-03T13:40:02Z", "RESOURCE_CREATED", pb, "r-rc")),
    ]

    # Celcoin: the proposal is PENDING after its background check started
    # (the check moved it to in_analysis; in_analysis -> pending), then the
    # check is approved (pending -> in_analysis) and the proposal approved.
    pid = "c0e4a7b2-9d31-4e5f-a8c6-2b7d9f1e3a54{R}"
    pb = cc_proposal_body(pid, "CLI-000202", "15260235126", "PF")
    F["celcoin_pending"] = [
        D("proposal CREATED", "p", cc("onboarding-proposal", "2026-06-04T12:00:00Z", "CREATED", pb, "p-c")),
        D("bgcheck CREATED", "p", cc("onboarding-backgroundcheck", "2026-06-04T12:00:02Z", "CREATED", pb, "p-bc")),
        D("bgcheck PROCESSING", "p", cc("onboarding-backgroundcheck", "2026-06-04T12:01:00Z", "PROCESSING", pb, "p-bp",
                                              ts_field="createTimeStamp")),
        D("proposal PENDING", "p", cc("onboarding-proposal", "2026-06-04T12:01:30Z", "PENDING", pb, "p-p")),
        D("bgcheck APPROVED", "p", cc("onboarding-backgroundcheck", "2026-06-04T12:05:30Z", "APPROVED", pb, "p-ba")),
        D("proposal APPROVED", "p", cc("onboarding-proposal", "2026-06-04T12:06:00Z", "APPROVED", pb, "p-a")),
    ]

    # Celcoin account status: created, a judicial block and its release in
    # the same second (both moves legal: the enum orders them, blocked
    # last), RFB blocks (two spellings), active, cancellation, closed.
    pid = "d71f3b86-5e2a-4c90-b4d7-8e6a1c2f0b39{R}"
    acct = {"branch": "0001", "account": "300888002", "name": "Daniela Rocha Lima",
            "documentNumber": "23550665407", "ispb": "13935893"}
    def st(when, status, reason, label):
        return cc_account_status(pid, "CLI-000203", "300888002", "235.506.654-07", when, status, reason, label)
    F["celcoin_account_status"] = [
        D("create CONFIRMED", "p", cc_create(pid, "CLI-000203", "2026-06-05T09:00:00.000", "CONFIRMED",
                                                   account=acct, label="s-ok")),
        D("BLOQUEIO-JUDICIAL@t", "p", st("2026-06-10T14:00:00.250", "BLOQUEIO-JUDICIAL", "Bloqueio judicial", "s-bj")),
        D("DESBLOQUEIO-JUDICIAL@t", "p", st("2026-06-10T14:00:00.250", "DESBLOQUEIO-JUDICIAL", "Desbloqueio judicial", "s-dj")),
        D("BLOQUEIO-RFB", "p", st("2026-07-01T08:00:00Z", "BLOQUEIO-RFB", "CPF irregular na Receita Federal", "s-br")),
        D("BLOQUEADO-RFB", "p", st("2026-07-01T08:00:05Z", "BLOQUEADO-RFB", "CPF irregular na Receita Federal", "s-br2")),
        D("ATIVO", "p", st("2026-07-20T12:00:00Z", "ATIVO", "Regularizado", "s-a")),
        D("EM CANCELAMENTO", "p", st("2026-08-10T15:45:00Z", "EM CANCELAMENTO", "Pedido do cliente", "s-ec")),
        D("ENCERRADO", "p", st("2026-08-20T15:45:00Z", "ENCERRADO", "Pedido do cliente", "s-e")),
    ]
    return F


# Where each flow ends, as the provider meant it (SPEC SS5, SS6): the status of
# its main entities after the flow, by table and key (placeholders as in the
# bodies).  Checked on every run (they all must agree anyway).
ENDS = {
    "qitech_samples": {("account", "dc575950-dcce-48e1-99a6-5fb0ada63d86{R}"): "rejected"},
    # opened after the rejection is illegal (rejected is final)
    "qitech_ties": {("account", "5e0c7d21-94ab-4f3e-8d16-b2a7c9e4f105{R}"): "rejected"},
    "qitech_pf": {("account", "3b9f6a52-7c1e-4d2a-9f0b-6e8d1c2a4b70{R}"): "active"},
    # limited and verified in one second: limited first (enum order)
    "fitbank_account": {("account", "860590-254444-7100458-1{R}"): "active"},
    "fitbank_account_sentinel": {("account", "{CPF}"): "limited"},
    "fitbank_documents": {("document", "4f8e2a1c-7b3d-4e9f-a6c5-0d1b2e3f4a51{R}"): "resubmitted",
                          ("document", "6e3f1a8b-2c4d-4b7e-9f05-8a1d3c6e2b49{R}"): "validated",
                          ("document", "{CPF}:14"): "expired"},
    "fitbank_closure": {("account", "860590-254444-7100612-7{R}"): "closed",
                        ("closure", "860590-254444-7100612-7{R}"): "approved"},
    "fitbank_person": {("proposal", "{CPF}"): "approved",
                       ("account", "860590-254444-7100733-2{R}"): "limited"},
    "celcoin_flow1": {("proposal", "7d2f4a90-3c1b-4e8a-b5f6-19e0c2d4a871{R}"): "account_created",
                      ("account", "7d2f4a90-3c1b-4e8a-b5f6-19e0c2d4a871{R}"): "active"},
    "celcoin_flow2": {("proposal", "a43e8c15-6b2d-4f70-9e1a-2c5b7d9f0e36{R}"): "account_created",
                      ("account", "a43e8c15-6b2d-4f70-9e1a-2c5b7d9f0e36{R}"): "active"},
    "celcoin_retry": {("proposal", "b58d2e71-4c9a-4f03-8e6b-7a1c3d5f9e20{R}"): "account_created",
                      ("account", "b58d2e71-4c9a-4f03-8e6b-7a1c3d5f9e20{R}"): "active"},
    "celcoin_pending": {("proposal", "c0e4a7b2-9d31-4e5f-a8c6-2b7d9f1e3a54{R}"): "approved"},
    "celcoin_account_status": {("proposal", "d71f3b86-5e2a-4c90-b4d7-8e6a1c2f0b39{R}"): "account_created",
                               ("account", "d71f3b86-5e2a-4c90-b4d7-8e6a1c2f0b39{R}"): "closed"},
}


# --- orders ------------------------------------------------------------------

def constraints(flow):
    """Pairs (i, j): delivery i must arrive before delivery j (see the header)."""
    pairs = set()
    for j, d in enumerate(flow):
        if not d["timeless"]:
            continue
        same = [(i, x) for i, x in enumerate(flow) if x["group"] == d["group"] and i != j]
        for i, x in same:
            if not x["timeless"] and x["t"] is None:
                raise ValueError("%s: a group with time-less deliveries needs t for %s" % (d["label"], x["label"]))
            # its place among the time-less deliveries of its group
            if x["timeless"]:
                pairs.add((min(i, j), max(i, j)))
        timed = [(i, x) for i, x in same if not x["timeless"]]
        anchor = max(((i, x) for i, x in timed if i < j), key=lambda ix: ix[1]["t"], default=None)
        if anchor is not None:
            pairs.add((anchor[0], j))
            for i, x in timed:
                if i != anchor[0] and x["t"] == anchor[1]["t"] and x["text"] != anchor[1]["text"]:
                    raise ValueError("%s shares the time of %s, the anchor of %s"
                                     % (x["label"], anchor[1]["label"], d["label"]))
        for i, x in timed:
            if anchor is None or x["t"] > anchor[1]["t"]:
                pairs.add((j, i))
    return pairs


def count_extensions(n, pairs):
    """Number of orders of range(n) that keep every pair, by dynamic programming over subsets."""
    pred = [0] * n
    for i, j in pairs:
        pred[j] |= 1 << i
    ways = {0: 1}
    for mask in range(1 << n):
        w = ways.get(mask)
        if not w:
            continue
        for j in range(n):
            if not mask >> j & 1 and pred[j] & mask == pred[j]:
                ways[mask | 1 << j] = ways.get(mask | 1 << j, 0) + w
    return ways.get((1 << n) - 1, 0), pred


def orders(flow, wanted, rng):
    n = len(flow)
    pairs = constraints(flow)
    real = tuple(range(n))
    assert all(real.index(i) < real.index(j) for i, j in pairs)
    if not pairs:
        total = math.factorial(n)
        if total <= ALL_ORDERS_MAX:
            out = [real] + [p for p in itertools.permutations(range(n)) if p != real]
            return out, total, True
        seen = {real, real[::-1]}
        out = [real, real[::-1]]
        while len(out) < wanted:
            p = list(range(n))
            rng.shuffle(p)
            p = tuple(p)
            if p not in seen:
                seen.add(p)
                out.append(p)
        return out, total, False
    total, pred = count_extensions(n, pairs)
    if total <= ALL_ORDERS_MAX:
        out = []

        def walk(prefix, mask):
            if len(prefix) == n:
                out.append(tuple(prefix))
                return
            for j in range(n):
                if not mask >> j & 1 and pred[j] & mask == pred[j]:
                    walk(prefix + [j], mask | 1 << j)
        walk([], 0)
        out.remove(real)
        return [real] + out, total, True
    # uniform over the admissible orders: pick each next delivery with the
    # probability of the orders that follow from it
    memo = {}

    def ways(mask):
        if mask == (1 << n) - 1:
            return 1
        if mask not in memo:
            memo[mask] = sum(ways(mask | 1 << j) for j in range(n)
                             if not mask >> j & 1 and pred[j] & mask == pred[j])
        return memo[mask]
    seen = {real}
    out = [real]
    while len(out) < min(wanted, total):
        mask, p = 0, []
        while len(p) < n:
            r = rng.randrange(ways(mask))
            for j in range(n):
                if not mask >> j & 1 and pred[j] & mask == pred[j]:
                    w = ways(mask | 1 << j)
                    if r < w:
                        p.append(j)
                        mask |= 1 << j
                        break
                    r -= w
        p = tuple(p)
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out, total, False


# --- plan --------------------------------------------------------------------

def tokens(flow_no, run):
    c = run_cpf(flow_no, run)
    return {"{R}": "-run%04d" % run, "{CPFM}": masked(c), "{CPF}": c}


def fill(text, tok):
    for ph in ("{R}", "{CPFM}", "{CPF}"):
        text = text.replace(ph, tok[ph])
    return text


def sql_literal(text):
    tag = "$cv$"
    assert tag not in text
    return tag + text + tag


def plan(fixtures, out_dir, seed, wanted):
    rng = random.Random(seed)
    for flow_no, (name, flow) in enumerate(flows(fixtures).items(), start=1):
        # bodies: the same text is the same body (b)
        body_ids, bodies = {}, []
        for d in flow:
            if d["text"] not in body_ids:
                body_ids[d["text"]] = len(bodies)
                bodies.append(d["label"])
            d["b"] = body_ids[d["text"]]
            assert "{R}" in d["text"] or "{CPF" in d["text"], (name, d["label"])
        runs, total, every = orders(flow, wanted, rng)
        control = os.environ.get("ONBOARDING_CONVERGENCE_CONTROL") == "1"
        if control:
            # the harness's own check: every run in the flow's own order
            runs = [runs[0]] * 20
        with open(os.path.join(out_dir, name + ".sql"), "w", encoding="utf-8") as f:
            for run, order in enumerate(runs):
                tok = tokens(flow_no, run)
                for d in order:
                    hdr = json.dumps({"conv": name, "run": run, "d": d, "b": flow[d]["b"]})
                    f.write("INSERT INTO onboarding.inbox (raw, headers) VALUES (%s, '%s');\n"
                            % (sql_literal(fill(flow[d]["text"], tok)), hdr))
        with open(os.path.join(out_dir, name + ".json"), "w", encoding="utf-8") as f:
            json.dump({"flow": name, "flow_no": flow_no, "labels": [d["label"] for d in flow],
                       "bodies": bodies, "runs": runs, "total": total, "every": every,
                   "control": control}, f)
        print(name, len(runs), len(flow), "all" if every else "sampled", total)


# --- copy --------------------------------------------------------------------

def copy(out_dir, name, seed):
    with open(os.path.join(out_dir, name + ".json"), encoding="utf-8") as f:
        p = json.load(f)
    rng = random.Random("%s/%s" % (seed, name))
    rows = collections.defaultdict(dict)
    for line in sys.stdin:
        r = json.loads(line)
        rows[r["headers"]["run"]][r["headers"]["d"]] = r
    # at most COPY_RUNS runs (a random choice), each run's bodies in the
    # arrival order of another run (admissible too), interleaved at random
    runs = sorted(rows)
    if len(runs) > COPY_RUNS:
        runs = sorted(rng.sample(runs, COPY_RUNS))
    queues = {}
    for r in runs:
        o = rng.randrange(len(p["runs"]))
        while o == r and len(p["runs"]) > 1:
            o = rng.randrange(len(p["runs"]))
        queues[r] = [rows[r][d] for d in p["runs"][o]]
    # interleave the runs at random, each keeping its order
    pending = [r for r in runs for _ in queues[r]]
    rng.shuffle(pending)
    out = sys.stdout
    for r in pending:
        row = queues[r].pop(0)
        hdr = dict(row["headers"], copy_of=row["id"])
        out.write("INSERT INTO onboarding.inbox (provider, payload, raw, headers) VALUES (%s, %s, %s, %s);\n" % (
            "'%s'" % row["provider"] if row["provider"] else "NULL",
            sql_literal(json.dumps(row["payload"], ensure_ascii=False)) + "::jsonb" if row["payload"] is not None else "NULL",
            sql_literal(row["raw"]) if row["raw"] is not None else "NULL",
            sql_literal(json.dumps(hdr)) + "::jsonb"))


# --- check -------------------------------------------------------------------

CPF_RE = re.compile(r"\d{3}\.?\d{3}\.?\d{3}-?\d{2}")
RUN_RE = re.compile(r"-run(\d{4})")


class Normaliser:
    def __init__(self, flow_no, nruns):
        self.by_cpf = {}
        for r in range(nruns):
            self.by_cpf[run_cpf(flow_no, r)] = r
        self.flow_no = flow_no

    def run_of(self, text):
        m = RUN_RE.search(text)
        if m:
            return int(m.group(1))
        for c in CPF_RE.findall(text):
            r = self.by_cpf.get(re.sub(r"\D", "", c))
            if r is not None:
                return r
        return None

    def normalise(self, text, run):
        tok = tokens(self.flow_no, run)
        return text.replace(tok["{R}"], "{R}").replace(tok["{CPFM}"], "{CPFM}").replace(tok["{CPF}"], "{CPF}")


def read_state(path, norm):
    """{run: tuple of normalised rows}; the rows of one entity stay in the order read."""
    per_run = collections.defaultdict(list)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            run = norm.run_of(line)
            if run is None:
                raise SystemExit("convergence: a row that belongs to no run: " + line[:300])
            per_run[run].append(norm.normalise(line, run))
    return {r: tuple(sorted(rows)) for r, rows in per_run.items()}


def read_history(path, norm):
    per_run = collections.defaultdict(list)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f):
            line = line.rstrip("\n")
            run = norm.run_of(line)
            if run is None:
                raise SystemExit("convergence: a history row that belongs to no run: " + line[:300])
            row = json.loads(norm.normalise(line, run))
            per_run[run].append(((row["provider"], row["entity"], row["entity_key"]), n, json.dumps(row, sort_keys=True)))
    # entities in key order, each entity's rows in id order (the order read)
    return {r: tuple(x[2] for x in sorted(rows)) for r, rows in per_run.items()}


def read_outcomes(path, p):
    per_run = collections.defaultdict(lambda: collections.defaultdict(list))
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        for line in f:
            run, b, outcome = line.rstrip("\n").split("|")
            per_run[int(run)][int(b)].append("applied" if outcome == "stale" else outcome)
    return {r: tuple("%s: %s" % (p["bodies"][b], ",".join(sorted(o))) for b, o in sorted(bs.items()))
            for r, bs in per_run.items()}


KEY_COLUMN = {"account": "account_key", "proposal": "proposal_key", "document": "document_key",
              "closure": "account_key"}


def row_key(row):
    """A state row's key (a history row's entity key)."""
    if "table" in row:
        return row[KEY_COLUMN[row["table"]]]
    return row["entity_key"]


def row_id(row):
    return "%s %s" % (row.get("table") or row.get("entity"), row_key(row))


def state_diff(a, b):
    """Column by column: what differs between two results (tuples of JSON rows)."""
    ra = {row_id(json.loads(x)): json.loads(x) for x in a}
    rb = {row_id(json.loads(x)): json.loads(x) for x in b}
    out = []
    for k in sorted(set(ra) | set(rb)):
        if k not in rb:
            out.append("- only in the first: %s (status %s)" % (k, ra[k].get("status")))
        elif k not in ra:
            out.append("+ only in the second: %s (status %s)" % (k, rb[k].get("status")))
        else:
            for c in sorted(set(ra[k]) | set(rb[k])):
                if ra[k].get(c) != rb[k].get(c):
                    out.append("  %s: %s: %s | %s" % (k, c, json.dumps(ra[k].get(c), ensure_ascii=False),
                                                      json.dumps(rb[k].get(c), ensure_ascii=False)))
    return out


def history_text(row):
    r = json.loads(row)
    return "%s %s: %s -> %s at %s%s" % (r["entity"], r["entity_key"], r["from_status"] or "(first)",
                                        r["to_status"], r["event_at"] or "(no time)",
                                        " (%s)" % r["reason"] if r.get("reason") else "")


def line_diff(a, b, fmt=lambda x: x):
    return [d for d in difflib.unified_diff([fmt(x) for x in a], [fmt(x) for x in b], lineterm="", n=1)
            if not d.startswith(("---", "+++"))]


def show_diff(what, a, b):
    if what == "state":
        return state_diff(a, b)
    if what == "history":
        return line_diff(a, b, history_text)
    return line_diff(a, b)


def describe(p, what, variants, limit=2):
    """Failure output: the variants, how many runs gave each, an order of each, a diff."""
    lines = []
    ranked = sorted(variants.items(), key=lambda kv: -len(kv[1]))
    lines.append("  %s across orders: %d distinct results over %d runs (%s)" % (
        what, len(ranked), sum(len(v) for _, v in ranked),
        ", ".join("%d runs" % len(v) for _, v in ranked[:8]) + (", ..." if len(ranked) > 8 else "")))
    base_value, base_runs = ranked[0]
    for value, rs in ranked[1:1 + limit]:
        lines.append("  -- %d run(s) like run %d: %s" % (len(base_runs), base_runs[0], order_text(p, base_runs[0])))
        lines.append("  ++ %d run(s) like run %d: %s" % (len(rs), rs[0], order_text(p, rs[0])))
        diff = show_diff(what, base_value, value)
        for d in diff[:16]:
            lines.append("     " + d[:300])
        if len(diff) > 16:
            lines.append("     ... %d more lines" % (len(diff) - 16))
    return lines


def order_text(p, run):
    if isinstance(run, str):      # the copy databases
        return run
    return " > ".join(p["labels"][d] for d in p["runs"][run])


# Same time, same status, different bodies: SPEC SS6 orders them by "a stable
# function of the body", and the bodies of different runs differ (their
# keys), so that order may differ from run to run; it must not differ
# between orders of one run's bodies (the shuffled copy checks that, run by
# run).  Runs are compared within the classes the tied fields' values make
# (state column by table), and there may be no more classes than the tied
# bodies have orders.
TIES = {
    # rejected "UNSC" and rejected "Bacen Protege+" in one second: the
    # reason is that of whichever the body function puts last
    "qitech_ties": ([("account", "reason")], 2),
}


def tie_classes(out_dir, name, norm, nruns):
    if name not in TIES:
        return {r: None for r in range(nruns)}
    state = read_state(os.path.join(out_dir, "%s.state.live" % name), norm) or {}
    out = {}
    for r in range(nruns):
        rows = [json.loads(x) for x in state.get(r, ())]
        out[r] = tuple("%s.%s=%s" % (t, c, ",".join(sorted(str(x.get(c)) for x in rows if x["table"] == t)))
                       for t, c in TIES[name][0])
    return out


def check(out_dir, name):
    with open(os.path.join(out_dir, name + ".json"), encoding="utf-8") as f:
        p = json.load(f)
    norm = Normaliser(p["flow_no"], len(p["runs"]))
    problems = []
    summary = {}
    # runs whose keys make the body function order tied bodies alike
    classes = tie_classes(out_dir, name, norm, len(p["runs"]))
    if len(set(classes.values())) > TIES.get(name, (None, 1))[1]:
        problems.append("  %d values of the tied fields %s across runs, at most %d possible: %s"
                        % (len(set(classes.values())), TIES[name][0], TIES[name][1],
                           sorted(set(classes.values()))))
    for what, reader in (("state", lambda path: read_state(path, norm)),
                         ("history", lambda path: read_history(path, norm)),
                         ("outcomes", lambda path: read_outcomes(path, p))):
        base = reader(os.path.join(out_dir, "%s.%s.live" % (name, what)))
        missing = [r for r in range(len(p["runs"])) if r not in base]
        if missing and what != "history":
            problems.append("  %s: nothing derived for %d run(s), e.g. run %d (order: %s)"
                            % (what, len(missing), missing[0], order_text(p, missing[0])))
        summary[what] = 0
        for cls in sorted(set(classes.values()), key=str):
            variants = collections.OrderedDict()
            for r in range(len(p["runs"])):
                if classes[r] == cls:
                    variants.setdefault(base.get(r, ()), []).append(r)
            summary[what] = max(summary[what], len(variants))
            if len(variants) > 1:
                problems += describe(p, what + ("" if cls is None else " (runs where %s)" % (cls,)), variants)
        # the copy, live and after rebuild(), against the runs' result
        for db in ("copy", "rebuilt"):
            other = reader(os.path.join(out_dir, "%s.%s.%s" % (name, what, db)))
            if other is None:
                continue
            copied = sorted(other)
            bad = [r for r in copied if other[r] != base.get(r, ())]
            summary[what + "_" + db] = "%d/%d" % (len(bad), len(copied))
            if bad:
                r = bad[0]
                problems.append("  %s of the shuffled copy%s differs from the runs' for %d of %d run(s); run %d"
                                " (-- as delivered: %s; ++ in the copy: another run's order):"
                                % (what, " after rebuild()" if db == "rebuilt" else "", len(bad), len(copied), r,
                                   order_text(p, r)))
                diff = show_diff(what, base.get(r, ()), other[r])
                for d in diff[:10]:
                    problems.append("     " + d[:300])
    # where the flow ends, run by run
    wrong = collections.defaultdict(list)
    live = read_state(os.path.join(out_dir, "%s.state.live" % name), norm) or {}
    for r in range(len(p["runs"])):
        got = {(x["table"], row_key(x)): x["status"] for x in map(json.loads, live.get(r, ()))}
        for (table, key), want in ENDS.get(name, {}).items():
            if got.get((table, key)) != want:
                wrong[(table, key, got.get((table, key)), want)].append(r)
    summary["ends"] = sum(len(v) for v in wrong.values())
    for (table, key, got, want), rs in sorted(wrong.items(), key=lambda kv: -len(kv[1]))[:4]:
        problems.append("  %s %s ends %s, not %s as the provider meant, in %d run(s), e.g. run %d: %s"
                        % (table, key, got or "(missing)", want, len(rs), rs[0], order_text(p, rs[0])))
    mode = "every order" if p["every"] else "random orders of %d" % p["total"]
    if p.get("control"):
        mode = "control: all in the flow's own order"
    def copy_text(db):
        return " ".join("%s %s" % (w, summary.get("%s_%s" % (w, db), "?")) for w in ("state", "history", "outcomes"))
    ties = len(set(classes.values()))
    print("convergence: %s: %d runs (%s) of %d deliveries: distinct states %d, histories %d, outcome sets %d"
          " (must be 1%s); runs not ending as the provider meant %d; runs that differ in the shuffled copy,"
          " live: %s; after rebuild(): %s"
          % (name, len(p["runs"]), mode, len(p["labels"]), summary["state"], summary["history"],
             summary["outcomes"], "" if name not in TIES else
             " in each of %d classes of runs by %s" % (ties, "/".join("%s.%s" % tc for tc in TIES[name][0])),
             summary["ends"], copy_text("copy"), copy_text("rebuilt")))
    if problems:
        print("convergence: %s FAILED:" % name)
        for line in problems:
            print(line)
        return 1
    return 0


def main(argv):
    if len(argv) == 6 and argv[1] == "plan":
        plan(argv[2], argv[3], int(argv[4]), int(argv[5]))
        return 0
    if len(argv) == 5 and argv[1] == "copy":
        copy(argv[2], argv[3], argv[4])
        return 0
    if len(argv) == 4 and argv[1] == "check":
        return check(argv[2], argv[3])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
