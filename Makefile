# Makefile for usage_fdw (PGXS)
#
#   make            build the extension
#   make install    install it into the PostgreSQL found by pg_config
#   make installcheck  the pg_regress suites against a running server where the
#                   extension is installed (PGHOST, PGPORT, PGUSER), with the
#                   mock API at MOCK_URL, or one it starts and stops itself
#   make test       from a fresh clone: install missing packages, build, install,
#                   run every test against a throwaway cluster and the mock API
#   make demo       start a throwaway cluster + mock API and run example reports
#   make demo-stop  stop what "make demo" started
#   make bench      the benchmark (not part of "make test")
#   make test-matrix "make test" against PostgreSQL 17, 18 and 19, each in a
#                   Debian chroot (root; scripts/matrix.sh)
#   make dist       the release archive usage_fdw-VERSION.zip (scripts/dist.sh;
#                   DIST_DIR=dir puts it there)
#
# PG_CONFIG names the PostgreSQL to build against and test with, e.g.
#   make PG_CONFIG=/usr/lib/postgresql/17/bin/pg_config

MODULE_big = usage_fdw
OBJS = \
	src/module.o \
	src/columns.o \
	src/plan.o \
	src/scan.o \
	src/fetch.o \
	src/option.o \
	src/origins.o \
	src/catalog.o \
	src/pushdown.o \
	src/params.o \
	src/private.o \
	src/request.o \
	src/http.o \
	src/http_easy.o \
	src/http_report.o \
	src/redact.o \
	src/auth.o \
	src/json_tuple.o \
	src/json_get.o \
	src/explain.o \
	src/ddl.o \
	src/echo_check.o \
	src/batchjoin.o \
	src/batchexec.o \
	src/declare.o \
	src/jwt.o \
	src/version.o

EXTENSION = usage_fdw
# The version is written once, as default_version in usage_fdw.control: the
# library's usage_fdw_version() and "make dist" take it from there.
EXTVERSION = $(shell sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" $(srcdir)/usage_fdw.control)
# install scripts of each version, and the upgrade scripts between them
DATA = usage_fdw--1.0.sql usage_fdw--1.1.sql usage_fdw--1.0--1.1.sql
PGFILEDESC = "usage_fdw - foreign data wrapper for vendor usage APIs"

# pg_regress suites, in order (sql/NAME.sql, expected/NAME.out)
REGRESS = setup options endpoints types paging pushdown explain import join auth faults hostile http_trust ddl_security trust batchjoin trust3 search_path typos transport origins redaction declared summaries certlogin recipes upgrade

CURL_CONFIG ?= curl-config
PG_CPPFLAGS = -I$(srcdir)/src -DUSAGE_FDW_VERSION='"$(EXTVERSION)"' $(shell $(CURL_CONFIG) --cflags 2>/dev/null)
# libcrypto signs the JWT client assertion of certificate login (jwt.c);
# libcurl and PostgreSQL link it already
SHLIB_LINK = $(shell $(CURL_CONFIG) --libs 2>/dev/null || echo -lcurl) -lcrypto
# -Wextra, minus unused parameters: PostgreSQL's own inline functions
# (ilist.h, bufpage.h, fmgr.h) and every callback signature trip it
PG_CFLAGS = -Wextra -Wno-unused-parameter

# make installcheck: the suites talk to the mock vendor API at $MOCK_URL.  Without
# it, scripts/installcheck.sh starts the mock on a free loopback port, runs this
# same "make installcheck" with MOCK_URL set (PGXS's own target, pg_regress
# against the server that PGHOST/PGPORT/PGUSER name), and stops the mock again.
ifeq ($(MOCK_URL),)
NO_INSTALLCHECK = 1
endif

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifneq ($(PGXS),)
include $(PGXS)
ifeq ($(MOCK_URL),)
installcheck:
	bash $(srcdir)/scripts/installcheck.sh $(MAKE) installcheck
endif
else
srcdir = .
all install installcheck:
	@echo "pg_config not found: install postgresql-server-dev-N, set PG_CONFIG, or run 'make test'" >&2; exit 1
endif

# every module includes the shared header
$(OBJS): $(srcdir)/src/usage_fdw.h $(srcdir)/src/compat.h $(srcdir)/src/batch.h $(srcdir)/src/fetch.h $(srcdir)/src/http_int.h $(srcdir)/src/batchjoin.h
# the version compiled in
src/module.o src/version.o src/http_easy.o: $(srcdir)/usage_fdw.control

.PHONY: test demo demo-stop bench test-matrix dist

test:
	bash $(srcdir)/scripts/test.sh

demo:
	bash $(srcdir)/scripts/demo.sh start

demo-stop:
	bash $(srcdir)/scripts/demo.sh stop

bench:
	bash $(srcdir)/scripts/bench.sh

test-matrix:
	bash $(srcdir)/scripts/matrix.sh $(MATRIX_VERSIONS)

dist:
	bash $(srcdir)/scripts/dist.sh $(DIST_DIR)
