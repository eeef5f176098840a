# Makefile for the onboarding extension (PGXS).
#
# `make demo` and `make test` do all the set-up on a fresh Debian 12
# machine (see test/run.sh); the rest is a plain PGXS build.  `make test
# PG=17` and `make test PG=18` run the same tests against that major in a
# Debian chroot kept under CHROOT_DIR (see test/chroot.sh).

# onboarding requires taxid, the CPF/CNPJ type as an extension of its own
# (taxid.control, sql/taxid--*.sql, the library taxid.so built below).
EXTENSION    = onboarding taxid
MODULE_big   = onboarding
OBJS         = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))
DATA         = $(wildcard sql/onboarding--*.sql sql/onboarding--*.control sql/taxid--*.sql) \
               sql/onboarding_providers.json
PG_CPPFLAGS  = -Isrc
PG_CFLAGS    = -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare

REGRESS      = comments inbox qitech fitbank celcoin bad taxid rules corpus taxid_domain reports window hardening ordering bounded provider_teach binding check_rules rebuild_scope erase tally fold partition archive
REGRESS_OPTS = --inputdir=. --load-extension=taxid --load-extension=onboarding
ISOLATION    = dedupe entity update_race window closure_deadlock rebuild_lock serialization late_race late_consequence late_rewrite rebuild_online tally_race status_race partition_race archive_race open_race
ISOLATION_OPTS = --inputdir=test/isolation --load-extension=taxid --load-extension=onboarding

EXTRA_CLEAN  = results regression.diffs regression.out output_iso taxid$(DLSUFFIX)

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)

# The major `make test` runs against: empty (or 15) for the host's
# PostgreSQL 15, 17 or 18 for a chroot of that major under CHROOT_DIR.
PG ?=
CHROOT_DIR ?= $(HOME)/.cache/onboarding/chroot

.PHONY: test demo bench bench-scale diagrams deb

# `make deb`: the Debian packages (debian/) of these majors, each built in
# a Debian chroot and tested in a clean one (test/chroot.sh, test/deb.sh);
# the .deb files land in packages/.
DEB_MAJORS ?= 15 17 18

# The two commands of README.md: each installs what is missing, builds,
# installs, runs against a throwaway cluster and stops it again.
.DEFAULT_GOAL := all

test:
ifeq ($(filter-out 15,$(PG)),)
	@bash test/run.sh test
else
	@CHROOT_DIR='$(CHROOT_DIR)' bash test/chroot.sh $(PG) test
endif

demo:
	@bash test/run.sh demo

bench:
	@bash test/run.sh bench

# Years of deliveries on one machine (issue 25): not run by CI (about an
# hour at its default of 10M deliveries); see test/bench/scale.sh.
bench-scale:
	@bash test/run.sh bench-scale

diagrams:
	@bash test/run.sh diagrams

deb:
	@set -e; for v in $(DEB_MAJORS); do CHROOT_DIR='$(CHROOT_DIR)' bash test/chroot.sh $$v deb; done

ifneq ($(PGXS),)
include $(PGXS)

# every C file includes the one header
$(OBJS): src/onboarding.h src/compat.h

# The library of the extension taxid: src/taxid.o alone (onboarding's
# library links it too, for the pipeline and for the 0.1.0 script, whose
# functions name it).  PGXS builds one MODULE_big or several single-file
# MODULES from the top directory; an object under src/ for a second
# library needs the rule PGXS would use (Makefile.port's %.so: %.o) and
# its install and uninstall steps, bitcode for JIT inlining included.
TAXID_SHLIB = taxid$(DLSUFFIX)

all: $(TAXID_SHLIB)

$(TAXID_SHLIB): src/taxid.o
	$(CC) $(CFLAGS) $< $(LDFLAGS) $(LDFLAGS_SL) -shared -o $@

.PHONY: install-taxid uninstall-taxid
install: install-taxid
install-taxid: $(TAXID_SHLIB) installdirs
	$(INSTALL_SHLIB) $(TAXID_SHLIB) '$(DESTDIR)$(pkglibdir)/'
ifeq ($(with_llvm), yes)
	$(call install_llvm_module,taxid,src/taxid.o)
endif

uninstall: uninstall-taxid
uninstall-taxid:
	rm -f '$(DESTDIR)$(pkglibdir)/$(TAXID_SHLIB)'
ifeq ($(with_llvm), yes)
	$(call uninstall_llvm_module,taxid)
endif
else
all install installcheck:
	@echo "pg_config not found: run 'make test' or 'make demo' to install PostgreSQL 15 and its headers" >&2
	@exit 1
endif
