/*
 * onboarding 0.1.0 -> 0.2.0 — upgrade script.
 *
 * Every change to the SQL surface made for 0.2.0 is written twice: in
 * onboarding--0.2.0.sql (a fresh install) and here (an installed 0.1.0),
 * and the upgrade test (test/scripts/upgrade.sh) proves that both give the
 * same schema.  Evidence in the inbox is never rewritten by this script.
 */

\echo Use "ALTER EXTENSION onboarding UPDATE TO '0.2.0'" to load this file. \quit
