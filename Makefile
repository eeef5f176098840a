# Makefile for the onboarding extension (PGXS).
#
# `make demo` and `make test` do all the set-up on a fresh Debian 12
# machine (see test/run.sh); the rest is a plain PGXS build.

EXTENSION    = onboarding
MODULE_big   = onboarding
OBJS         = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))
DATA         = $(wildcard sql/onboarding--*.sql)
PG_CPPFLAGS  = -Isrc
PG_CFLAGS    = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare

REGRESS      = inbox qitech fitbank celcoin bad taxid rules corpus reports window
REGRESS_OPTS = --inputdir=. --load-extension=onboarding
ISOLATION    = dedupe entity update_race window closure_deadlock rebuild_lock serialization
ISOLATION_OPTS = --inputdir=test/isolation --load-extension=onboarding

EXTRA_CLEAN  = results regression.diffs regression.out output_iso

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)

.PHONY: test demo bench diagrams

# The two commands of README.md: each installs what is missing, builds,
# installs, runs against a throwaway cluster and stops it again.
.DEFAULT_GOAL := all

test:
	@bash test/run.sh test

demo:
	@bash test/run.sh demo

bench:
	@bash test/run.sh bench

diagrams:
	@bash test/run.sh diagrams

ifneq ($(PGXS),)
include $(PGXS)

# every C file includes the one header
$(OBJS): src/onboarding.h
else
all install installcheck:
	@echo "pg_config not found: run 'make test' or 'make demo' to install PostgreSQL 15 and its headers" >&2
	@exit 1
endif
